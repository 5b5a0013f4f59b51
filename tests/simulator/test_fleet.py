"""The fleet and its streams: reproducible to the byte, a sound fleet description, and the whole
run through ``run_simulation`` and the virtual logger with the in-memory publisher."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from coldchain.gs1 import is_valid_gtin, is_valid_sscc
from coldchain.gs1_parse import parse_epc_uri
from coldchain.settings import MqttSettings, Settings
from coldchain.telemetry import DEVICE_ID_PATTERN
from simulator import simulate
from simulator.faults import OutgoingMessage
from simulator.fleet import build_fleet, to_ms
from simulator.publisher import InMemoryPublisher, Pacer, pump
from simulator.routes import CITIES
from simulator.scenario import load_scenario, scenario_from_dict
from simulator.service import parse_setpoint, resolve_start, run_simulation, run_virtual_logger
from simulator.streams import generate_chunks
from tests.simulator import ROOT, START, base_scenario


def wire(messages: list[OutgoingMessage]) -> list[tuple[str, bytes, int]]:
    return [(m.topic, m.payload, m.send_ms) for m in messages]


@pytest.fixture(scope="module")
def summer() -> list[tuple[str, bytes, int]]:
    _, messages, _ = simulate(load_scenario("summer_reefer_failure"), seed=7)
    return wire(messages)


def test_same_scenario_and_seed_give_the_same_bytes(summer: list[tuple[str, bytes, int]]) -> None:
    _, again, _ = simulate(load_scenario("summer_reefer_failure"), seed=7)
    assert wire(again) == summer
    assert len(summer) > 30_000


def test_another_seed_gives_other_bytes(summer: list[tuple[str, bytes, int]]) -> None:
    _, other, _ = simulate(load_scenario("summer_reefer_failure"), seed=8)
    assert wire(other) != summer
    assert {p for _, p, _ in wire(other)}.isdisjoint(
        {p for _, p, _ in summer[:1000] if b'"readings"' not in p}
    )


def test_a_loggers_stream_does_not_depend_on_the_rest_of_the_fleet() -> None:
    """Per-logger generators: adding shipments (and so changing the block size) changes nothing."""

    def first_logger(shipments: int) -> np.ndarray:
        data = base_scenario(fleet={"shipments": shipments, "interval_s": 60})
        fleet = build_fleet(scenario_from_dict(data), start=START)
        return np.concatenate([c.temp_c[0] for c in generate_chunks(fleet)])

    small, large = first_logger(2), first_logger(5000)
    assert np.array_equal(small, large)


def test_the_fleet_description_is_consistent() -> None:
    data = base_scenario(
        fleet={
            "shipments": 3,
            "loggers_per_shipment": 2,
            "id_prefix": "UT",
            "cases_per_pallet": 2,
            "items_per_case": 3,
        }
    )
    fleet = build_fleet(scenario_from_dict(data), start=START)
    assert [s.reference for s in fleet.shipments] == [
        "UT-SHP-00001",
        "UT-SHP-00002",
        "UT-SHP-00003",
    ]
    assert all(re.match(DEVICE_ID_PATTERN, d.device_id) for d in fleet.devices)
    assert {a.device_id for a in fleet.assignments} == {d.device_id for d in fleet.devices}
    assert all(a.start == START and a.end == fleet.end for a in fleet.assignments)
    for s in fleet.shipments:
        assert s.legs[0].origin == s.origin and s.legs[-1].destination == s.destination
        assert s.planned_departure <= s.planned_arrival
    for p in fleet.products:
        assert is_valid_gtin(p.gtin)
    parents = {a.child_epc: a.parent_epc for a in fleet.aggregations}
    by_epc = {u.epc: u for u in fleet.units}
    for su in fleet.shipment_units:
        pallet = by_epc[su.epc]
        assert pallet.kind == "sscc" and is_valid_sscc(pallet.sscc or "")
        cases = [c for c, p in parents.items() if p == pallet.epc]
        assert len(cases) == 2
        for case in cases:
            assert is_valid_sscc(by_epc[case].sscc or "")
            items = [i for i, p in parents.items() if p == case]
            assert len(items) == 3
            for item in items:
                unit = by_epc[item]
                parsed = parse_epc_uri(unit.epc)
                assert (parsed.kind, parsed.gtin, parsed.serial) == (
                    "sgtin",
                    unit.gtin,
                    unit.serial,
                )
                shipment = next(s for s in fleet.shipments if s.reference == su.shipment_reference)
                assert unit.lot == shipment.lot and unit.expiry == shipment.expiry
                assert unit.expiry is not None and unit.expiry > START.date()
    # Rebuilding gives the same identities: provisioning is idempotent by these keys.
    again = build_fleet(scenario_from_dict(data), start=START + timedelta(hours=5))
    assert [u.epc for u in again.units] == [u.epc for u in fleet.units]


def test_streams_stay_in_the_run_and_follow_the_route() -> None:
    data = base_scenario(duration_h=8, fleet={"shipments": 1, "interval_s": 300})
    fleet = build_fleet(scenario_from_dict(data), start=START)
    (chunk,) = list(generate_chunks(fleet))
    t = chunk.t_ms[0]
    assert fleet.start_ms <= t[0] < fleet.start_ms + 300_000 and t[-1] < fleet.end_ms
    assert np.all(np.diff(t) == 300_000)
    basel, frankfurt = CITIES["Basel"], CITIES["Frankfurt"]
    assert (chunk.lat[0, 0], chunk.lon[0, 0]) == pytest.approx((basel.lat, basel.lon), abs=0.05)
    assert (chunk.lat[0, -1], chunk.lon[0, -1]) == (frankfurt.lat, frankfurt.lon)
    assert np.all(np.diff(chunk.battery[0]) <= 0)
    assert np.all((chunk.rh >= 0) & (chunk.rh <= 100))


def test_start_is_back_dated_so_no_timestamp_is_ahead_of_the_clock() -> None:
    sc = load_scenario("demo").model_copy(update={"duration_h": 6.0, "history_h": None})
    now = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    assert resolve_start(sc, None, now) == now - timedelta(hours=6)
    assert resolve_start(sc, 1.0, now) == now
    assert resolve_start(sc, 60.0, now) == now - timedelta(hours=6) * (59 / 60)
    # With history_h, that much lies in the past; the rest follows in real time (see Pacer).
    demo = load_scenario("demo")
    assert demo.history_h == 1
    assert resolve_start(demo, 60.0, now) == now - timedelta(hours=1)
    assert resolve_start(demo, None, now) == now - timedelta(hours=demo.duration_h)
    fixed = scenario_from_dict(base_scenario())
    assert resolve_start(fixed, None, now) == START


# --- the running edges, with the in-memory publisher --------------------------------------


async def test_run_simulation_publishes_the_pure_stream_and_writes_the_truth(
    tmp_path: Path,
) -> None:
    sc = scenario_from_dict(base_scenario(faults={"duplicate_rate": 0.01, "malformed_rate": 0.01}))
    _, expected, truth = simulate(sc, start=START, root=ROOT)
    pub = InMemoryPublisher()
    path = tmp_path / "truth.json"
    result = await run_simulation(
        Settings(_env_file=None, mqtt=MqttSettings(topic_root=ROOT)),
        scenario=sc,
        speed=None,
        seed=None,
        ground_truth_path=path,
        progress=False,
        start=START,
        publisher=pub,
    )
    assert pub.sent == [(m.topic, m.payload, 1) for m in expected]
    assert result.stats.published == len(expected) and result.stats.failed == 0
    assert result.faults["duplicates"] == sum(m.kind == "duplicate" for m in expected) > 0
    assert json.loads(path.read_text()) == truth.to_dict()


async def test_pump_counts_failures_and_carries_on() -> None:
    sc = scenario_from_dict(base_scenario(duration_h=1))
    _, messages, _ = simulate(sc, start=START, root=ROOT)
    pub = InMemoryPublisher(fail=lambda topic, payload: topic.endswith("000002/telemetry"))
    stats = await pump(messages, pub, max_in_flight=8)
    refused = sum(m.topic.endswith("000002/telemetry") for m in messages)
    assert refused > 0
    assert stats.failed == refused and stats.published == len(messages) - refused
    assert stats.first_error is not None and "refused" in stats.first_error


async def test_pacing_holds_messages_until_their_time_and_stop_ends_early() -> None:
    sc = scenario_from_dict(base_scenario(duration_h=1))
    _, messages, _ = simulate(sc, start=START, root=ROOT)
    pacer = Pacer(to_ms(START), time.monotonic(), speed=3600 / 0.4)  # one hour in 0.4 s
    t0 = time.monotonic()
    stats = await pump(messages, InMemoryPublisher(), pacer=pacer)
    assert time.monotonic() - t0 >= 0.35
    assert stats.published == len(messages)
    stop = asyncio.Event()
    asyncio.get_running_loop().call_later(0.1, stop.set)
    pacer = Pacer(to_ms(START), time.monotonic(), speed=3600 / 2.0)
    stats = await pump(messages, InMemoryPublisher(), pacer=pacer, stop_event=stop)
    assert stats.stopped and 0 < stats.published < len(messages)


@pytest.mark.parametrize(
    ("payload", "value"),
    [
        (b'{"temp_c": 12}', 12.0),
        (b"12", 12.0),
        (b"temp 7.5\n", 7.5),
        (b'{"rh": 3}', None),
        (b"hot", None),
        (b"999", None),
    ],
)
def test_setpoint_commands(payload: bytes, value: float | None) -> None:
    assert parse_setpoint(payload) == value


class _CountingPublisher(InMemoryPublisher):
    """Sets ``after_two`` once the status and the first reading are out."""

    def __init__(self) -> None:
        super().__init__()
        self.after_two = asyncio.Event()

    async def publish(self, topic: str, payload: bytes, *, qos: int = 1) -> None:
        await super().publish(topic, payload, qos=qos)
        if len(self.sent) >= 2:
            self.after_two.set()


async def test_virtual_logger_follows_a_command() -> None:
    pub = _CountingPublisher()

    async def commands() -> AsyncIterator[bytes]:
        await pub.after_two.wait()
        yield b'{"temp_c": 12}'

    clock = iter(datetime(2026, 6, 1, tzinfo=UTC) + timedelta(seconds=i) for i in range(100))
    vlog = await asyncio.wait_for(
        run_virtual_logger(
            Settings(_env_file=None),
            device_id="V-1",
            temp_c=5.0,
            interval_s=30.0,
            read_stdin=False,
            publisher=pub,
            commands=[commands()],
            now=lambda: next(clock),
            max_readings=2,
        ),
        timeout=5,
    )
    temps = [json.loads(p).get("temp_c") for _, p, _ in pub.sent]
    assert temps == [None, 5.0, 12.0]  # status, then 5 °C, then at once the new 12 °C
    assert vlog.changes == [12.0]


def test_pacer_never_sends_a_reading_before_its_time() -> None:
    # A scenario starting one hour ago, played at 60x: the past hour takes one minute, then
    # real time — a logger cannot report the future.
    live0 = to_ms(START) + 3_600_000
    pacer = Pacer(to_ms(START), 0.0, speed=60.0, live_ms0=live0)
    assert pacer.wall_for(to_ms(START) + 30 * 60_000) == pytest.approx(30.0)  # history, fast
    assert pacer.wall_for(live0) == pytest.approx(60.0)  # caught up
    assert pacer.wall_for(live0 + 600_000) == pytest.approx(600.0)  # then real time
