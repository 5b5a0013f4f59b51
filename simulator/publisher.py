"""Sending the simulator's messages: a ``Publisher`` protocol, its MQTT and in-memory forms,
and :func:`pump`, which paces messages to (accelerated) real time and keeps many QoS 1 publishes
in flight at once.

aiomqtt's ``publish`` awaits the PUBACK of a QoS 1 message. Awaiting each one in turn would cap
the rate at one message per round trip, so :func:`pump` feeds a bounded queue drained by
``max_in_flight`` worker tasks: that many PUBACKs are outstanding while the queue keeps the
producer from running ahead. paho sends in the order ``publish`` is called, and the workers take
messages in queue order, so the wire order stays the send order.

More in flight is not faster: aiomqtt 2.5.1 walks all pending calls on every publish, so the cost
per message grows with the window. Against a local Mosquitto, 64 gave the best rate (about
8–9k messages/s from one process, CPU-bound in the client); 1024 halved it.

The in-memory publisher records what was sent, for unit tests; integration tests use a real broker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import ssl
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

import aiomqtt

from coldchain.errors import SetupError
from coldchain.settings import MqttSettings
from simulator.faults import OutgoingMessage

log = logging.getLogger(__name__)


class Publisher(Protocol):
    """Anything that can send one MQTT message (QoS 1 unless told otherwise)."""

    async def publish(self, topic: str, payload: bytes, *, qos: int = 1) -> None:
        """Send; raise on failure."""
        ...


@dataclass
class InMemoryPublisher:
    """Keeps every published (topic, payload, qos) in order; ``fail`` makes chosen sends raise."""

    sent: list[tuple[str, bytes, int]] = field(default_factory=list)
    fail: Callable[[str, bytes], bool] | None = None

    async def publish(self, topic: str, payload: bytes, *, qos: int = 1) -> None:
        """Record the message (or raise ``ConnectionError`` when ``fail`` says so)."""
        if self.fail is not None and self.fail(topic, payload):
            raise ConnectionError(f"in-memory publish to {topic} refused")
        self.sent.append((topic, payload, qos))


def make_client(
    settings: MqttSettings,
    client_id: str,
    *,
    will: aiomqtt.Will | None = None,
    max_inflight: int | None = None,
    timeout: float | None = None,
) -> aiomqtt.Client:
    """An aiomqtt client for the configured broker (not yet connected)."""
    password = settings.password.get_secret_value() if settings.password else None
    tls = None
    if settings.tls:
        tls = ssl.create_default_context(cafile=str(settings.ca_file) if settings.ca_file else None)
    return aiomqtt.Client(
        settings.host,
        settings.port,
        username=settings.username,
        password=password if settings.username is not None else None,
        identifier=client_id,
        keepalive=settings.keepalive_s,
        will=will,
        max_inflight_messages=max_inflight,
        timeout=timeout,
        tls_context=tls,
    )


class MqttPublisher:
    """Publishes through one aiomqtt connection and reconnects when the broker drops it.

    Use as ``async with MqttPublisher(settings, client_id=...) as pub``. A publish that fails
    raises; the next publish after a disconnect first reconnects (with back-off), so a broker
    restart costs the messages in flight at that moment, not the run.
    """

    def __init__(
        self,
        settings: MqttSettings,
        *,
        client_id: str,
        max_in_flight: int = 64,
        timeout_s: float = 30.0,
    ) -> None:
        self.settings = settings
        self.client_id = client_id
        self.max_in_flight = max_in_flight
        self.timeout_s = timeout_s
        self._client: aiomqtt.Client | None = None
        self._lock = asyncio.Lock()
        self._broken = False

    async def __aenter__(self) -> MqttPublisher:
        try:
            await self._connect()
        except aiomqtt.MqttError as exc:
            raise SetupError(
                f"cannot reach the MQTT broker at {self.settings.host}:{self.settings.port} "
                f"({exc}); start it (coldchain up) or set COLDCHAIN_MQTT__HOST/PORT"
            ) from exc
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._close()

    async def _connect(self) -> None:
        client = make_client(
            self.settings, self.client_id, max_inflight=self.max_in_flight, timeout=self.timeout_s
        )
        # aiomqtt warns above 10 pending publishes; we keep hundreds pending on purpose.
        client.pending_calls_threshold = self.max_in_flight + 16
        await client.__aenter__()
        self._client = client
        self._broken = False

    async def _close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(aiomqtt.MqttError, asyncio.TimeoutError):
                await client.__aexit__(None, None, None)

    async def _reconnect(self) -> None:
        async with self._lock:
            if not self._broken and self._client is not None:
                return  # another worker reconnected already
            await self._close()
            delay = 0.5
            while True:
                try:
                    await self._connect()
                    log.info(
                        "reconnected to MQTT broker %s:%s", self.settings.host, self.settings.port
                    )
                    return
                except aiomqtt.MqttError as exc:
                    log.warning("MQTT reconnect failed (%s); retrying in %.1f s", exc, delay)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 10.0)

    async def publish(self, topic: str, payload: bytes, *, qos: int = 1) -> None:
        """Publish and, for QoS 1, wait for the PUBACK."""
        if self._broken or self._client is None:
            await self._reconnect()
        assert self._client is not None
        try:
            await self._client.publish(topic, payload, qos=qos)
        except aiomqtt.MqttError:
            self._broken = True
            raise


@dataclass
class PublishStats:
    """What :func:`pump` did."""

    published: int = 0
    failed: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    last_send_ms: int | None = None
    stopped: bool = False
    first_error: str | None = None


@dataclass(frozen=True, slots=True)
class Pacer:
    """Maps simulated time to wall-clock time: ``wall = wall0 + (sim - sim0) / speed``.

    With ``live_ms0`` (the real epoch time at ``wall0``) a message is also never sent before
    its own timestamp has come: a logger cannot report the future. A scenario that starts in
    the past therefore plays its history at ``speed`` until it reaches the present, then goes
    on in real time.
    """

    sim0_ms: int
    wall0: float
    speed: float
    live_ms0: int | None = None

    def wall_for(self, sim_ms: int) -> float:
        """Wall-clock time (``clock()`` units, seconds) at which ``sim_ms`` is due."""
        paced = self.wall0 + (sim_ms - self.sim0_ms) / 1000.0 / self.speed
        if self.live_ms0 is None:
            return paced
        return max(paced, self.wall0 + (sim_ms - self.live_ms0) / 1000.0)


async def pump(
    messages: Iterable[OutgoingMessage],
    publisher: Publisher,
    *,
    pacer: Pacer | None = None,
    max_in_flight: int = 64,
    stop_event: asyncio.Event | None = None,
    clock: Callable[[], float] = time.monotonic,
    on_sent: Callable[[OutgoingMessage, bool], None] | None = None,
    drain_timeout_s: float = 30.0,
) -> PublishStats:
    """Publish ``messages`` in order, each no earlier than its paced time (None: at once)."""
    stats = PublishStats()
    stop = stop_event or asyncio.Event()
    queue: asyncio.Queue[OutgoingMessage] = asyncio.Queue(maxsize=max_in_flight * 2)

    async def worker() -> None:
        while True:
            msg = await queue.get()
            ok = True
            try:
                await publisher.publish(msg.topic, msg.payload, qos=1)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # one failed message must not end the run
                ok = False
                if stats.first_error is None:
                    stats.first_error = f"{type(exc).__name__}: {exc}"
                    log.warning("publish to %s failed: %s", msg.topic, exc)
            finally:
                queue.task_done()
            if ok:
                stats.published += 1
                stats.by_kind[msg.kind] = stats.by_kind.get(msg.kind, 0) + 1
            else:
                stats.failed += 1
            if on_sent is not None:
                on_sent(msg, ok)

    workers = [asyncio.create_task(worker(), name=f"sim-publish-{i}") for i in range(max_in_flight)]
    try:
        since_yield = 0
        for msg in messages:
            if stop.is_set():
                stats.stopped = True
                break
            if pacer is not None:
                delay = pacer.wall_for(msg.send_ms) - clock()
                if delay > 0 and await _wait(stop, delay):
                    stats.stopped = True
                    break
            await queue.put(msg)
            stats.last_send_ms = msg.send_ms
            since_yield += 1
            if since_yield >= 256:
                # The generator is synchronous; let the workers run between bursts.
                since_yield = 0
                await asyncio.sleep(0)
        await _bounded(queue.join(), drain_timeout_s)
    finally:
        for w in workers:
            w.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
    stats.failed += queue.qsize()  # left undelivered after the drain timeout
    return stats


async def _wait(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep up to ``seconds``; True if ``stop`` was set meanwhile."""
    try:
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    except TimeoutError:
        return False
    return True


async def _bounded(aw: Awaitable[None], seconds: float) -> None:
    if math.isinf(seconds):
        await aw
        return
    try:
        await asyncio.wait_for(aw, timeout=seconds)
    except TimeoutError:
        log.warning("gave up waiting for in-flight publishes after %.0f s", seconds)
