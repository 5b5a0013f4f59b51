"""Simulator throughput: how fast one process makes and publishes the 10,000-logger load test.

Run: ``.venv/bin/python bench/simulator_rate.py [--messages N]``.
Prints (1) the generation rate (physics, faults, payloads; in-memory publisher), (2) the publish
rate over MQTT QoS 1 to a private local Mosquitto, as fast as possible, and (3) the headroom
against what 10,000 loggers at a one-minute interval need in real time (167 messages/s).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import local_stack
from coldchain.settings import MqttSettings
from simulator.faults import FaultInjector, message_stream
from simulator.fleet import build_fleet
from simulator.publisher import InMemoryPublisher, MqttPublisher, pump
from simulator.scenario import load_scenario

START = datetime(2026, 11, 1, tzinfo=UTC)


def stream(n: int, root: str):
    fleet = build_fleet(load_scenario("load_test"), start=START)
    return fleet, itertools.islice(message_stream(fleet, FaultInjector(fleet, root=root)), n)


async def generate(n: int) -> float:
    _, messages = stream(n, "bench/v1")
    t = time.perf_counter()
    stats = await pump(messages, InMemoryPublisher())
    assert stats.published == n, stats
    return n / (time.perf_counter() - t)


async def publish(n: int, port: int) -> float:
    _, messages = stream(n, "bench/v1")
    settings = MqttSettings(port=port, topic_root="bench/v1")
    async with MqttPublisher(settings, client_id="bench-sim") as mqtt:
        t = time.perf_counter()
        stats = await pump(messages, mqtt, max_in_flight=64)
        elapsed = time.perf_counter() - t
    assert stats.failed == 0, stats
    return stats.published / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000)
    n = parser.parse_args().messages
    fleet, _ = stream(1, "x")
    loggers = len(fleet.devices)
    needed = loggers / fleet.interval_s
    gen = asyncio.run(generate(n))
    with local_stack() as stack:
        pub = asyncio.run(publish(n, stack.broker.port))
    print(
        f"load_test fleet: {loggers:,} loggers at a {fleet.interval_s} s interval "
        f"-> real time needs {needed:,.0f} messages/s"
    )
    print(f"generation (physics, faults, payloads)  {gen:>10,.0f} messages/s")
    print(
        f"published over MQTT QoS 1, as fast as possible  {pub:>10,.0f} messages/s"
        f"   = {pub / needed:.0f}x what real time needs"
    )


if __name__ == "__main__":
    main()
