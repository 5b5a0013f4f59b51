"""The ingester's long-running loop: subscribe, parse, batch, commit, then acknowledge.

Acknowledge after commit: the MQTT client runs with manual acknowledgement, and a message's
PUBACK is sent only once the transaction holding its readings (or its dead letter) committed.
A SIGKILL at any moment therefore loses nothing: the broker keeps unacknowledged messages in the
persistent session (clean start off, session expiry set) and delivers them again; the primary
key on (device, measurement time) makes the re-delivery a no-op.

Flow control comes from the broker: the client announces an MQTT 5 receive maximum, so at most
that many unacknowledged messages are ever in our hands, whatever the backlog. Batches flush on
size or age, whichever comes first; one batch is written while the next one fills.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from coldchain.settings import Settings
from coldchain.telemetry import Limits, parse_payload
from ingest.sink import Batch, DeadLetter, Sink

log = logging.getLogger(__name__)


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class IngestStats:
    """Counters, for logs and the metrics endpoint."""

    messages: int = 0
    readings_new: int = 0
    readings_duplicate: int = 0
    dead_letters: int = 0
    statuses: int = 0
    batches: int = 0
    commit_retries: int = 0
    last_commit_ms: float = 0.0


@dataclass
class _Pending:
    batch: Batch = field(default_factory=Batch)
    acks: list[tuple[int, int]] = field(default_factory=list)  # (mid, qos) in arrival order
    started: float = 0.0


class Ingester:
    """Consumes the device topics of one broker through a shared subscription."""

    def __init__(
        self,
        settings: Settings,
        sink: Sink,
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._s = settings
        self._sink = sink
        self._clock = clock
        self.stats = IngestStats()
        cfg = settings.ingest
        self._max_readings = cfg.batch_max_readings
        self._max_age = cfg.batch_max_age_ms / 1000.0
        # Twice the batch size keeps one batch filling while the previous one commits.
        self._receive_maximum = cfg.receive_maximum or min(
            65535, max(2 * cfg.batch_max_readings, 100)
        )
        self._limits = Limits(
            max_payload_bytes=cfg.max_payload_bytes,
            max_batch_readings=cfg.max_batch_readings,
            max_future=timedelta(seconds=cfg.max_future_s),
        )
        self._known: frozenset[str] | None = None
        self._known_loaded = 0.0
        self.connected = asyncio.Event()

    # --- topics ----------------------------------------------------------------------------

    def subscriptions(self) -> list[str]:
        root, group = self._s.mqtt.topic_root, self._s.mqtt.shared_group
        return [
            f"$share/{group}/{root}/devices/+/telemetry",
            f"$share/{group}/{root}/devices/+/status",
        ]

    # --- the loop --------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set; then flush, commit and acknowledge what is held, and return."""
        backoff = 0.5
        while not stop.is_set():
            try:
                await self._session(stop)
                backoff = 0.5
            except aiomqtt.MqttError as exc:
                self.connected.clear()
                if stop.is_set():
                    break
                log.warning("MQTT connection lost (%s); reconnecting in %.1f s", exc, backoff)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), backoff)
                backoff = min(backoff * 2, 30.0)
        log.info(
            "ingester stopped: %d messages, %d new readings, %d duplicates, %d dead letters",
            self.stats.messages,
            self.stats.readings_new,
            self.stats.readings_duplicate,
            self.stats.dead_letters,
        )

    def _client(self) -> aiomqtt.Client:
        m = self._s.mqtt
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = m.session_expiry_s
        props.ReceiveMaximum = self._receive_maximum
        tls = (
            aiomqtt.TLSParameters(ca_certs=str(m.ca_file) if m.ca_file else None) if m.tls else None
        )
        client = aiomqtt.Client(
            m.host,
            m.port,
            identifier=m.client_id,
            username=m.username,
            password=m.password.get_secret_value() if m.password else None,
            protocol=aiomqtt.ProtocolVersion.V5,
            clean_start=False,
            properties=props,
            keepalive=m.keepalive_s,
            tls_params=tls,
        )
        # aiomqtt 2.5 acknowledges on receipt; paho (underneath) can leave it to us.
        client._client.manual_ack_set(True)
        return client

    async def _session(self, stop: asyncio.Event) -> None:
        client = self._client()
        async with client:
            for topic in self.subscriptions():
                await client.subscribe(topic, qos=1)
            self.connected.set()
            log.info("ingester subscribed to %s", ", ".join(self.subscriptions()))
            writes: asyncio.Queue[_Pending | None] = asyncio.Queue(maxsize=2)
            pending = _Pending()

            async def hand_over() -> None:
                nonlocal pending
                if len(pending.acks) or len(pending.batch):
                    full, pending = pending, _Pending()
                    await writes.put(full)

            async def read() -> None:
                nonlocal pending
                async for message in client.messages:
                    if not pending.acks:
                        pending.started = time.monotonic()
                    await self._absorb(message, pending)
                    if len(pending.batch.readings) >= self._max_readings:
                        await hand_over()

            async def tick() -> None:
                while True:
                    await asyncio.sleep(self._max_age / 2)
                    if pending.acks and time.monotonic() - pending.started >= self._max_age:
                        await hand_over()

            async def write() -> None:
                while (item := await writes.get()) is not None:
                    if not await self._commit(item.batch, stop):
                        continue  # not committed, so not acknowledged: the broker keeps it
                    paho_client = client._client
                    for mid, qos in item.acks:
                        if qos > 0:
                            paho_client.ack(mid, qos)

            writer = asyncio.create_task(write(), name="ingest-writer")
            reader = asyncio.create_task(read(), name="ingest-reader")
            ticker = asyncio.create_task(tick(), name="ingest-ticker")
            stopper = asyncio.create_task(stop.wait(), name="ingest-stop")
            try:
                done, _ = await asyncio.wait(
                    {reader, writer, stopper}, return_when=asyncio.FIRST_COMPLETED
                )
                for task in (reader, writer):
                    if task in done and task.exception() is not None:
                        raise task.exception()  # type: ignore[misc]
            finally:
                reader.cancel()
                ticker.cancel()
                stopper.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await reader
                if not writer.done():
                    # Graceful stop: what we hold is committed and acknowledged before we leave.
                    await hand_over()
                    await writes.put(None)
                    await writer
                # Let the PUBACKs reach the socket before DISCONNECT.
                await asyncio.sleep(0)

    async def _absorb(self, message: aiomqtt.Message, pending: _Pending) -> None:
        self.stats.messages += 1
        topic = message.topic.value
        payload = (
            message.payload if isinstance(message.payload, bytes) else str(message.payload).encode()
        )
        limits = self._limits
        if self._s.ingest.require_known_device:
            limits = Limits(
                limits.max_payload_bytes,
                limits.max_batch_readings,
                limits.max_future,
                await self._known_devices_for(topic),
            )
        parsed = parse_payload(
            topic, payload, root=self._s.mqtt.topic_root, now=self._clock(), limits=limits
        )
        pending.batch.readings.extend(parsed.readings)
        if parsed.status is not None:
            pending.batch.statuses.append(parsed.status)
        for rej in parsed.rejections:
            pending.batch.dead_letters.append(
                DeadLetter(topic, rej.reason, payload, rej.device_id, rej.index)
            )
            log.info("dead letter from %s: %s", topic, rej.reason)
        pending.acks.append((message.mid, message.qos))

    async def _known_devices_for(self, topic: str) -> frozenset[str]:
        """The device registry, reloaded when a device we do not know shows up (at most every 5 s)."""
        now = time.monotonic()
        device = topic.split("/")[-2] if topic.count("/") >= 2 else ""
        stale = self._known is None or (
            device not in self._known and now - self._known_loaded > 5.0
        )
        if stale:
            self._known = await self._sink.known_devices()
            self._known_loaded = now
        assert self._known is not None
        return self._known

    async def _commit(self, batch: Batch, stop: asyncio.Event) -> bool:
        """Commit, retrying with backoff while the database is away; never drop the batch.

        Returns False only when asked to stop while the database is still away: the batch is
        then neither committed nor acknowledged, and the broker delivers it again later.
        """
        backoff = 0.2
        while True:
            started = time.perf_counter()
            try:
                new = await self._sink.write(batch)
            except Exception as exc:  # database down or restarting: keep the batch, retry
                self.stats.commit_retries += 1
                if stop.is_set():
                    log.warning(
                        "stopping with %d uncommitted items (%s); not acknowledged", len(batch), exc
                    )
                    return False
                log.warning(
                    "commit of %d items failed (%s); retrying in %.1f s", len(batch), exc, backoff
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)
                continue
            self.stats.last_commit_ms = (time.perf_counter() - started) * 1000
            self.stats.batches += 1
            self.stats.readings_new += new
            self.stats.readings_duplicate += len(batch.readings) - new
            self.stats.dead_letters += len(batch.dead_letters)
            self.stats.statuses += len(batch.statuses)
            return True


__all__ = ["IngestStats", "Ingester"]
