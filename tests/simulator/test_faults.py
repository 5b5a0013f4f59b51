"""Faults on purpose: exact counts, out-of-order batches, malformed messages the parser refuses,
and every well-formed payload parsing back into the readings it was built from."""

from __future__ import annotations

import json
import math
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest

from coldchain.telemetry import Limits, parse_payload, telemetry_topic
from simulator import simulate
from simulator.faults import (
    FaultInjector,
    FaultPlan,
    Outage,
    OutgoingMessage,
    exact_count,
    message_stream,
)
from simulator.fleet import Fleet, build_fleet, to_ms
from simulator.scenario import MALFORMED_KINDS, scenario_from_dict
from tests.simulator import ROOT, START, base_scenario

FAR_FUTURE = datetime(2100, 1, 1, tzinfo=UTC)

FAULTS: dict[str, Any] = {
    "duplicate_rate": 0.03,
    "reupload_rate": 0.5,
    "clock_skew_devices": 0.25,
    "clock_skew_max_s": 60,
    "malformed_rate": 0.02,
    "coverage_loss": {
        "devices": 0.375,
        "outages_per_device": 2,
        "min_duration_min": 20,
        "max_duration_min": 50,
        "batch_max_readings": 7,
    },
}


@pytest.fixture(scope="module")
def run() -> tuple[Fleet, list[OutgoingMessage], dict[str, Any]]:
    data = base_scenario(
        faults=FAULTS, fleet={"shipments": 4, "loggers_per_shipment": 2, "interval_s": 60}
    )
    fleet, messages, truth = simulate(scenario_from_dict(data), start=START, root=ROOT)
    return fleet, messages, truth.faults


def limits(fleet: Fleet) -> Limits:
    return Limits(known_devices=frozenset(d.device_id for d in fleet.devices))


def test_fault_counts_match_the_configuration(
    run: tuple[Fleet, list[OutgoingMessage], dict[str, Any]],
) -> None:
    fleet, messages, faults = run
    kinds = Counter(m.kind for m in messages)
    live = kinds["reading"]
    assert live > 1000
    assert kinds["duplicate"] == math.floor(0.03 * live)
    assert kinds["malformed"] == math.floor(0.02 * live)
    assert kinds["reupload"] == math.floor(0.5 * kinds["batch"])
    n = len(fleet.devices)
    outages = faults["outages"]
    assert len({o["device_id"] for o in outages}) == round(0.375 * n)
    assert len(outages) == 2 * round(0.375 * n)
    assert len(faults["clock_skew_ms"]) == round(0.25 * n)
    assert all(1000 <= abs(ms) <= 60_000 for ms in faults["clock_skew_ms"].values())
    summary = faults["summary"]
    assert (
        summary["duplicates"] == kinds["duplicate"] and summary["malformed"] == kinds["malformed"]
    )
    assert summary["batches"] == kinds["batch"]


def test_messages_leave_in_send_order(
    run: tuple[Fleet, list[OutgoingMessage], dict[str, Any]],
) -> None:
    _, messages, _ = run
    sends = [m.send_ms for m in messages]
    assert sends == sorted(sends)


def test_buffered_readings_arrive_later_in_batches_out_of_order(
    run: tuple[Fleet, list[OutgoingMessage], dict[str, Any]],
) -> None:
    _, messages, faults = run
    batches = [m for m in messages if m.kind == "batch"]
    assert batches
    assert all(1 <= len(b.readings) <= 7 for b in batches)
    assert sum(len(b.readings) for b in batches) == faults["summary"]["buffered_readings"]
    newest_live: dict[str, datetime] = {}
    late = 0
    for m in messages:
        if m.kind == "reading":
            newest_live[m.device_id] = max(
                newest_live.get(m.device_id, m.readings[0].ts), m.readings[0].ts
            )
        elif m.kind == "batch":
            # Live readings taken after the outage went out before this batch did.
            late += all(r.ts < newest_live[m.device_id] for r in m.readings)
    assert late == len(batches)
    # Per outage the newest batch goes first.
    first: dict[tuple[str, int], OutgoingMessage] = {}
    for b in batches:
        first.setdefault((b.device_id, b.send_ms // 60_000), b)
    for b in first.values():
        later = [
            x for x in batches if x.device_id == b.device_id and 0 < x.send_ms - b.send_ms < 60_000
        ]
        assert all(x.readings[-1].ts < b.readings[0].ts for x in later)


def test_buffered_readings_are_those_measured_during_the_outages(
    run: tuple[Fleet, list[OutgoingMessage], dict[str, Any]],
) -> None:
    _, messages, faults = run
    skew = {d: ms for d, ms in faults["clock_skew_ms"].items()}
    windows = [
        (
            o["device_id"],
            to_ms(datetime.fromisoformat(o["start"])),
            to_ms(datetime.fromisoformat(o["end"])),
        )
        for o in faults["outages"]
    ]

    def in_outage(device_id: str, true_ms: int) -> bool:
        return any(d == device_id and a <= true_ms < b for d, a, b in windows)

    for m in messages:
        for r in m.readings:
            true_ms = to_ms(r.ts) - skew.get(m.device_id, 0)
            if m.kind in ("batch", "reupload"):
                assert in_outage(m.device_id, true_ms)
            elif m.kind == "reading":
                assert not in_outage(m.device_id, true_ms)


def test_skewed_clocks_stamp_readings_off_by_their_offset(
    run: tuple[Fleet, list[OutgoingMessage], dict[str, Any]],
) -> None:
    _, messages, faults = run
    skew = faults["clock_skew_ms"]
    for m in messages:
        if m.kind == "reading":
            assert to_ms(m.readings[0].ts) - m.send_ms == skew.get(m.device_id, 0)


def test_duplicates_repeat_an_earlier_payload_minutes_later(
    run: tuple[Fleet, list[OutgoingMessage], dict[str, Any]],
) -> None:
    _, messages, _ = run
    sent: dict[bytes, int] = {}
    for m in messages:
        if m.kind in ("reading", "batch"):
            sent[m.payload] = m.send_ms
        elif m.kind in ("duplicate", "reupload"):
            assert m.payload in sent
            assert 5_000 <= m.send_ms - sent[m.payload] <= 600_000


def test_every_malformed_message_is_refused_by_the_parser(
    run: tuple[Fleet, list[OutgoingMessage], dict[str, Any]],
) -> None:
    fleet, messages, _ = run
    malformed = [m for m in messages if m.kind == "malformed"]
    assert {m.fault for m in malformed} == set(MALFORMED_KINDS)
    for m in malformed:
        parsed = parse_payload(m.topic, m.payload, root=ROOT, now=FAR_FUTURE, limits=limits(fleet))
        assert parsed.readings == () and parsed.rejections, (m.fault, m.payload)
        if m.fault == "wrong_device":
            assert m.topic != telemetry_topic(ROOT, m.device_id)


def test_every_well_formed_payload_parses_back_into_its_readings(
    run: tuple[Fleet, list[OutgoingMessage], dict[str, Any]],
) -> None:
    fleet, messages, _ = run
    checked = 0
    for m in messages:
        if m.kind == "malformed":
            continue
        parsed = parse_payload(m.topic, m.payload, root=ROOT, now=FAR_FUTURE, limits=limits(fleet))
        assert parsed.rejections == (), parsed.rejections
        if m.kind == "status":
            assert parsed.status is not None and parsed.status.device_id == m.device_id
            continue
        assert parsed.readings == m.readings
        checked += len(m.readings)
    assert checked > 1000


def test_a_logger_that_dies_during_an_outage_loses_its_buffer() -> None:
    data = base_scenario(
        fleet={"shipments": 1, "interval_s": 60},
        events=[{"kind": "logger_death", "shipments": [1], "at_min": 60}],
    )
    fleet = build_fleet(scenario_from_dict(data), start=START)
    s = fleet.start_ms
    plan = FaultPlan(
        outages=(
            Outage(
                0, fleet.devices[0].device_id, s + 30 * 60_000, s + 90 * 60_000, s + 91 * 60_000
            ),
            Outage(
                0, fleet.devices[0].device_id, s + 10 * 60_000, s + 20 * 60_000, s + 21 * 60_000
            ),
        ),
        skew_ms={},
    )
    injector = FaultInjector(fleet, root=ROOT, plan=plan)
    messages = list(message_stream(fleet, injector))
    by_start = {o["start"][11:16]: o for o in injector.log.outages}
    assert by_start["06:30"]["lost_readings"] == 30 and by_start["06:30"]["batches"] == 0
    assert by_start["06:10"]["lost_readings"] == 0 and by_start["06:10"]["batches"] == 1
    readings = [r for m in messages if m.kind in ("reading", "batch") for r in m.readings]
    assert len(readings) == 30  # the first hour, less the 30 readings that died with the logger
    last_will = [
        m for m in messages if m.kind == "status" and json.loads(m.payload)["online"] is False
    ]
    assert len(last_will) == 1 and last_will[0].send_ms == s + 60 * 60_000 + 90_000


def test_exact_count_is_robust_to_binary_fractions() -> None:
    assert exact_count(0.29, 100) == 29
    assert exact_count(0.1, 30) == 3
    assert exact_count(0.005, 199) == 0
    assert exact_count(1.0, 7) == 7
