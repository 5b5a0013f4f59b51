"""bench/soak.py's own pieces: its fault schedule, its poison, and its loggers' count against
the real broker (what the soak counts as acknowledged must be what the broker acknowledged)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import math
import time
from datetime import UTC, datetime

import pytest

from bench._common import Counter as Subscriber
from bench.soak import ATTACKER, POISONS, Logger, Plan, Tally, percentile, schedule
from coldchain.telemetry import Limits, parse_payload, telemetry_topic
from launcher.localstack import MosquittoBroker

LIMIT = 256 * 1024
PLAN = Plan(
    seconds=600, loggers=500, kills=40, api_clients=50, interval_s=5.0, burst_every_s=300.0,
    poison_every_s=30.0, drain_timeout_s=180.0, api_think_ms=0.0,
)  # fmt: skip


def test_schedule_of_ten_minutes_spaces_the_database_and_broker_kills_from_ingester_kills() -> None:
    events = schedule(PLAN)
    kills = [t for t, what in events if what == "ingester"]
    assert len(kills) == 40
    assert all(0 < t < PLAN.seconds for t in kills)
    for what in ("postgres", "broker"):
        (at,) = [t for t, w in events if w == what]
        assert min(abs(at - k) for k in kills) >= 5.0, what
    assert [t for t, _ in events] == sorted(t for t, _ in events)


@pytest.mark.parametrize("kills", [0, 1, 2, 5])
def test_schedule_with_few_kills_still_has_one_of_each_fault(kills: int) -> None:
    plan = dataclasses.replace(PLAN, seconds=75.0, kills=kills)
    events = schedule(plan)
    assert sorted(w for _, w in events) == sorted(["ingester"] * kills + ["postgres", "broker"])
    assert all(0 < t < plan.seconds for t, _ in events)


def test_the_big_poison_is_6000_invalid_readings_in_256_kib_that_the_ingester_parses() -> None:
    now = datetime.now(UTC)
    kind, payload = POISONS["batch"][1](ATTACKER, now, LIMIT)
    assert kind == "telemetry"
    assert 250 * 1024 < len(payload) <= LIMIT  # under the limit: parsed, not refused whole
    parsed = parse_payload(
        telemetry_topic("r", ATTACKER), payload, root="r", now=now, limits=Limits()
    )
    assert parsed.readings == ()
    assert len(parsed.rejections) == 6000


def test_the_other_poisons_are_what_the_issue_names() -> None:
    now = datetime.now(UTC)
    kind, nul = POISONS["nul"][1](ATTACKER, now, LIMIT)
    assert kind == "status" and json.loads(nul)["firmware"] == "\x00"
    _, big = POISONS["bigint"][1](ATTACKER, now, LIMIT)
    assert "9" * 5000 in big.decode() and "9" * 5001 not in big.decode()
    with pytest.raises(ValueError):  # past Python's int-from-text limit: what the issue saw
        json.loads(big)
    _, epoch = POISONS["epoch"][1](ATTACKER, now, LIMIT)
    assert json.loads(epoch)["ts"] < 0
    _, text = POISONS["string"][1](ATTACKER, now, LIMIT)
    assert json.loads(text)["temp_c"] == "5.5"


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert [percentile(values, q) for q in (0.5, 0.95, 0.99, 1.0)] == [50.0, 95.0, 99.0, 100.0]
    assert math.isnan(percentile([], 0.5))


def test_loggers_count_as_acknowledged_exactly_what_the_broker_acknowledged(
    broker: MosquittoBroker, topic_root: str
) -> None:
    """Three loggers publish (uploads of 60 readings included) to the real broker; every key
    the tally holds is unique, and the subscriber received every acknowledged message."""
    plan = dataclasses.replace(PLAN, interval_s=0.1, burst_every_s=0.5)
    subscriber = Subscriber(broker.port, f"{topic_root}/devices/+/telemetry")
    tally = Tally(time.monotonic())

    async def publish_for_a_while() -> None:
        stop = asyncio.Event()
        loggers = [
            Logger(f"LOG-{i}", "any", broker.port, topic_root, plan, tally) for i in range(3)
        ]
        tasks = [asyncio.create_task(lg.run(stop, [math.inf])) for lg in loggers]
        await asyncio.sleep(1.5)
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 30)

    try:
        asyncio.run(publish_for_a_while())
        subscriber.wait(tally.messages_acked, 10)
    finally:
        subscriber.close()
    assert tally.messages_acked >= 15
    assert subscriber.got == tally.messages_acked
    assert len(tally.acked) == tally.readings_acked  # no (device, ts) key used twice
    assert tally.readings_acked > tally.messages_acked  # some 60-reading uploads among them
    assert tally.given_up == 0 and not tally.failures
