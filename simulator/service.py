"""The running simulator: provision the fleet, publish its traffic, write the ground truth; and a
single virtual logger whose temperature a person sets by hand.

Time modes of :func:`run_simulation`:

* ``speed=1.0``: real time; each message leaves when the wall clock reaches its send time.
* ``speed=60.0``: accelerated; one simulated hour per wall minute.
* ``speed=None``: as fast as the broker takes it.

With ``start`` neither given nor fixed in the scenario, the run is back-dated so that no reading is
ever stamped ahead of the wall clock: ``start = now - duration × (1 - 1/speed)`` (``now - duration``
as fast as possible, ``now`` in real time). Byte-identical runs need a fixed start.

This module is the edge: it reads the clock, talks to the broker and the database, and prints.
Everything it publishes comes from the pure core (:mod:`simulator.fleet`, :mod:`simulator.faults`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import aiomqtt
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from coldchain.settings import Settings
from coldchain.telemetry import (
    DeviceStatus,
    Reading,
    reading_payload,
    status_payload,
    status_topic,
    telemetry_topic,
)
from simulator.faults import FaultInjector, OutgoingMessage, message_stream
from simulator.fleet import Fleet, build_fleet
from simulator.groundtruth import GroundTruth, GroundTruthBuilder
from simulator.physics import lag_step
from simulator.publisher import MqttPublisher, Pacer, Publisher, PublishStats, make_client, pump
from simulator.scenario import Scenario, load_scenario

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class SimulationResult:
    """The outcome of :func:`run_simulation`."""

    fleet: Fleet
    speed: float | None
    stats: PublishStats
    faults: dict[str, int]
    ground_truth: GroundTruth
    provisioned: object | None  # what ``register`` returned
    wall_s: float

    def summary(self) -> dict[str, Any]:
        """Published, failed and injected-fault counts, for printing or JSON."""
        return {
            "scenario": self.fleet.scenario.name,
            "seed": self.fleet.seed,
            "start": self.fleet.start.isoformat(),
            "loggers": len(self.fleet.devices),
            "shipments": len(self.fleet.shipments),
            "published": self.stats.published,
            "failed": self.stats.failed,
            "published_by_kind": dict(sorted(self.stats.by_kind.items())),
            "stopped_early": self.stats.stopped,
            "wall_s": round(self.wall_s, 2),
            "faults": self.faults,
        }


def resolve_start(scenario: Scenario, speed: float | None, now: datetime) -> datetime:
    """The scenario's start; for "auto", ``history_h`` before now, or else the latest start
    that keeps every timestamp of the run in the past."""
    if scenario.start != "auto":
        return scenario.start
    duration = timedelta(hours=scenario.duration_h)
    if scenario.history_h is not None and speed is not None:
        lag = min(duration, timedelta(hours=scenario.history_h))
    else:
        lag = duration if speed is None else duration * max(0.0, 1.0 - 1.0 / speed)
    return (now - lag).replace(microsecond=0)


async def run_simulation(
    settings: Settings,
    *,
    scenario: str | Path | Scenario,
    speed: float | None,
    seed: int | None = None,
    register: Callable[[Fleet], Awaitable[object]] | None = None,
    ground_truth_path: Path | None = None,
    progress: bool = False,
    stop_event: asyncio.Event | None = None,
    start: datetime | None = None,
    publisher: Publisher | None = None,
    max_in_flight: int = 64,
) -> SimulationResult:
    """Register the fleet (with ``register``: the launcher passes
    :func:`services.fleet.registrar`, the services' own path), publish the scenario's traffic,
    write the ground truth.

    ``publisher`` replaces the MQTT connection (tests pass an in-memory one). ``stop_event``
    ends the run early: in-flight messages are drained and the ground truth covers what was made.
    """
    sc = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
    if speed is not None and speed <= 0:
        raise ValueError("speed must be positive, or None for as fast as possible")
    if start is None:
        start = resolve_start(sc, speed, datetime.now(UTC))
    fleet = build_fleet(sc, seed=seed, start=start)
    provisioned = await register(fleet) if register is not None else None

    injector = FaultInjector(fleet, root=settings.mqtt.topic_root)
    truth = GroundTruthBuilder(fleet)
    messages = message_stream(fleet, injector, observe=truth.observe)
    t0 = time.monotonic()
    live_ms0 = int(datetime.now(UTC).timestamp() * 1000)
    pacer = None if speed is None else Pacer(fleet.start_ms, t0, speed, live_ms0)

    with _progress_bar(fleet, enabled=progress) as on_sent:
        if publisher is not None:
            stats = await pump(
                messages,
                publisher,
                pacer=pacer,
                max_in_flight=max_in_flight,
                stop_event=stop_event,
                on_sent=on_sent,
            )
        else:
            # The broker plugin binds a client id to its account: "user name:suffix".
            client_id = f"{settings.mqtt.username or 'coldchain-sim'}:{os.getpid()}"
            async with MqttPublisher(
                settings.mqtt, client_id=client_id, max_in_flight=max_in_flight
            ) as mqtt:
                stats = await pump(
                    messages,
                    mqtt,
                    pacer=pacer,
                    max_in_flight=max_in_flight,
                    stop_event=stop_event,
                    on_sent=on_sent,
                )

    ground_truth = truth.finish(injector.log, complete=not stats.stopped)
    if ground_truth_path is not None:
        await asyncio.to_thread(ground_truth.write, ground_truth_path)
    result = SimulationResult(
        fleet=fleet,
        speed=speed,
        stats=stats,
        faults=injector.log.summary(),
        ground_truth=ground_truth,
        provisioned=provisioned,
        wall_s=time.monotonic() - t0,
    )
    if progress:
        _print_summary(result)
    else:
        log.info("simulation finished: %s", json.dumps(result.summary()))
    return result


async def register_scenario(
    scenario: str | Path | Scenario,
    *,
    register: Callable[[Fleet], Awaitable[T]],
    speed: float | None,
    seed: int | None = None,
    start: datetime | None = None,
) -> tuple[Fleet, T]:
    """Register the fleet :func:`run_simulation` would drive (same start and seed), and publish
    nothing (``coldchain simulate --provision-only``)."""
    sc = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
    if start is None:
        start = resolve_start(sc, speed, datetime.now(UTC))
    fleet = build_fleet(sc, seed=seed, start=start)
    return fleet, await register(fleet)


@contextlib.contextmanager
def _progress_bar(
    fleet: Fleet, *, enabled: bool
) -> Iterator[Callable[[OutgoingMessage, bool], None] | None]:
    """A rich progress bar over simulated time; yields the per-message callback (or None)."""
    if not enabled:
        yield None
        return
    total_s = fleet.duration_ms / 1000.0
    bar = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>5.1f}% sim time"),
        TextColumn("{task.fields[sent]} sent, {task.fields[failed]} failed"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    counts = {"sent": 0, "failed": 0}
    task = bar.add_task(fleet.scenario.name, total=total_s, sent=0, failed=0)

    def on_sent(msg: OutgoingMessage, ok: bool) -> None:
        counts["sent" if ok else "failed"] += 1
        if (counts["sent"] + counts["failed"]) % 200 == 0 or not ok:
            done = min(total_s, (msg.send_ms - fleet.start_ms) / 1000.0)
            bar.update(task, completed=done, sent=counts["sent"], failed=counts["failed"])

    with bar:
        yield on_sent
        bar.update(task, completed=total_s, sent=counts["sent"], failed=counts["failed"])


def _print_summary(result: SimulationResult) -> None:
    table = Table(title=f"simulation {result.fleet.scenario.name!r} (seed {result.fleet.seed})")
    table.add_column("what")
    table.add_column("count", justify="right")
    s = result.summary()
    for key in ("shipments", "loggers", "published"):
        table.add_row(key, str(s[key]))
    for key, value in s["published_by_kind"].items():
        table.add_row(f"  {key}", str(value))
    table.add_row("failed", str(s["failed"]))
    table.add_row("faults injected", "")
    for key, value in result.faults.items():
        table.add_row(f"  {key}", str(value))
    table.add_row("wall time (s)", f"{result.wall_s:.1f}")
    if result.stats.first_error:
        table.add_row("first error", result.stats.first_error)
    Console().print(table)


# --- a single virtual logger ------------------------------------------------------------------


@dataclass
class VirtualLogger:
    """One logger whose target temperature is set by hand (pure state, no I/O)."""

    device_id: str
    target_c: float
    temp_c: float
    tau_s: float = 0.0  # 0: the reading jumps to a new target at once
    rh: float = 50.0
    lat: float = 52.37
    lon: float = 4.90
    battery: float = 1.0
    changes: list[float] = field(default_factory=list)

    def set_target(self, temp_c: float) -> None:
        """A new temperature to move to."""
        self.target_c = temp_c
        self.changes.append(temp_c)

    def advance(self, dt_s: float) -> None:
        """Let ``dt_s`` pass: the temperature lags towards the target."""
        self.temp_c = float(lag_step(self.temp_c, self.target_c, dt_s, self.tau_s))

    def reading(self, ts: datetime) -> Reading:
        """The reading the logger reports now."""
        return Reading(
            self.device_id, ts, round(self.temp_c, 2), self.rh, self.lat, self.lon, self.battery
        )


def parse_setpoint(payload: bytes | str) -> float | None:
    """``{"temp_c": 12}`` or a bare number (``12``, ``temp 12``) → 12.0; None if not understood."""
    text = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else payload
    text = text.strip()
    if not text:
        return None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError:
        doc = text.split()[-1]
    if isinstance(doc, dict):
        doc = doc.get("temp_c")
    try:
        value = float(doc)
    except (TypeError, ValueError):
        return None
    return value if -80.0 <= value <= 80.0 else None


def command_topic(root: str, device_id: str) -> str:
    """Where the virtual logger listens for ``{"temp_c": ...}``."""
    return f"{root}/sim/{device_id}/set"


async def run_virtual_logger(
    settings: Settings,
    *,
    device_id: str = "SIM-VIRTUAL-01",
    temp_c: float = 5.0,
    interval_s: float = 10.0,
    tau_s: float = 0.0,
    read_stdin: bool = True,
    stop_event: asyncio.Event | None = None,
    publisher: Publisher | None = None,
    commands: Sequence[AsyncIterator[bytes]] = (),
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    max_readings: int | None = None,
) -> VirtualLogger:
    """Publish one logger's readings every ``interval_s``; its temperature follows commands.

    Commands come from stdin (a number per line), from ``{root}/sim/{device_id}/set`` with
    ``{"temp_c": 12}``, and from ``commands`` (tests). A new target is published at once.
    With ``publisher`` given, no broker connection is made. Returns the logger's final state.
    """
    root = settings.mqtt.topic_root
    vlog = VirtualLogger(device_id, temp_c, temp_c, tau_s)
    stop = stop_event or asyncio.Event()
    sources = list(commands)
    if read_stdin:
        sources.append(_stdin_lines())
    if publisher is not None:
        await _virtual_loop(
            vlog,
            publisher,
            sources,
            root=root,
            interval_s=interval_s,
            stop=stop,
            now=now,
            max_readings=max_readings,
        )
        return vlog
    offline = status_payload(DeviceStatus(device_id, online=False))
    will = aiomqtt.Will(status_topic(root, device_id), offline, qos=1)
    async with make_client(settings.mqtt, f"coldchain-vlogger-{device_id}", will=will) as client:
        await client.subscribe(command_topic(root, device_id), qos=1)
        sources.append(_mqtt_payloads(client))
        pub = _ClientPublisher(client)
        await _virtual_loop(
            vlog,
            pub,
            sources,
            root=root,
            interval_s=interval_s,
            stop=stop,
            now=now,
            max_readings=max_readings,
        )
        await client.publish(status_topic(root, device_id), offline, qos=1)
    return vlog


@dataclass
class _ClientPublisher:
    client: aiomqtt.Client

    async def publish(self, topic: str, payload: bytes, *, qos: int = 1) -> None:
        await self.client.publish(topic, payload, qos=qos)


async def _virtual_loop(
    vlog: VirtualLogger,
    publisher: Publisher,
    sources: Sequence[AsyncIterator[bytes]],
    *,
    root: str,
    interval_s: float,
    stop: asyncio.Event,
    now: Callable[[], datetime],
    max_readings: int | None,
) -> None:
    topic = telemetry_topic(root, vlog.device_id)
    sent = 0
    wake = asyncio.Event()

    async def send() -> None:
        nonlocal sent
        await publisher.publish(topic, reading_payload(vlog.reading(now())), qos=1)
        sent += 1
        if max_readings is not None and sent >= max_readings:
            stop.set()

    async def listen(source: AsyncIterator[bytes]) -> None:
        async for payload in source:
            value = parse_setpoint(payload)
            if value is None:
                log.warning("virtual logger %s: ignored command %r", vlog.device_id, payload[:80])
                continue
            vlog.set_target(value)
            wake.set()

    status = DeviceStatus(vlog.device_id, True, now(), vlog.battery, "coldchain-sim/1.0")
    await publisher.publish(status_topic(root, vlog.device_id), status_payload(status), qos=1)
    listeners = [
        asyncio.create_task(listen(s), name=f"vlogger-cmd-{i}") for i, s in enumerate(sources)
    ]
    last = time.monotonic()
    try:
        while not stop.is_set():
            t = time.monotonic()
            vlog.advance(t - last)
            last = t
            await send()
            if stop.is_set():
                break
            wake.clear()
            waiters = [asyncio.create_task(stop.wait()), asyncio.create_task(wake.wait())]
            _, pending = await asyncio.wait(
                waiters, timeout=interval_s, return_when=asyncio.FIRST_COMPLETED
            )
            for w in pending:
                w.cancel()
    finally:
        for task in listeners:
            task.cancel()
        await asyncio.gather(*listeners, return_exceptions=True)


async def _stdin_lines() -> AsyncIterator[bytes]:
    """Lines typed on stdin, without blocking the loop (EOF ends the stream)."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    try:
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    except (ValueError, OSError):
        log.info("stdin is not readable here; use the MQTT command topic")
        return
    while line := await reader.readline():
        yield line


async def _mqtt_payloads(client: aiomqtt.Client) -> AsyncIterator[bytes]:
    async for message in client.messages:
        payload = message.payload
        yield payload if isinstance(payload, bytes) else str(payload).encode()
