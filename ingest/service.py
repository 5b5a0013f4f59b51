"""The ingester's long-running loop: subscribe, parse, batch, commit, then acknowledge.

Acknowledge after commit: the MQTT client runs with manual acknowledgement, and a message's
PUBACK is sent only once the transaction holding its readings (or its dead letter) committed,
in the order the messages arrived. A SIGKILL at any moment therefore loses nothing: the broker
keeps unacknowledged messages in the persistent session (clean start off, session expiry set)
and delivers them again; the primary key on (device, measurement time) makes the re-delivery a
no-op.

Flow control: the client announces an MQTT 5 receive maximum, and the ingester stops reading
its socket while it holds that many unacknowledged messages, or four batches' worth of parsed
readings, until a commit frees room. (Mosquitto 2.0.11 honours the receive maximum only until
the first PUBACK; see ``IngestClient.pause_reading``.) What the ingester holds is therefore
bounded whatever the backlog; the rest waits in the broker.

The data path, all on one event loop:

- the MQTT client (:class:`ingest.mqtt.IngestClient`) hands each PUBLISH synchronously to
  :meth:`Ingester._on_publish`, which parses it into the batch that is filling (no queue and no
  task per message; see ``ingest/mqtt.py`` for why);
- a batch is sealed when it holds ``batch_max_readings`` items;
- writer tasks take sealed batches in order, and the filling one once its first message is
  ``batch_max_age_ms`` old, or at once when the broker can send nothing more (we hold as many
  unacknowledged messages as the receive maximum); while they commit, the next batch fills;
- after each commit, that batch's messages are acknowledged in one write, batches strictly in
  the order they were taken, so PUBACKs go out in arrival order.

What the database refuses (issue 11): a commit that fails because the database is away (a lost
connection, a pool timeout, a shutdown, a deadlock: :func:`~ingest.refusals.refused_by_database` says False) is
retried with backoff, holding the batch. One that fails because of what it holds (a DataError,
an IntegrityError, a value the driver cannot encode) is never retried as is: the batch is split
in halves, recursively, until the message the database refuses is alone; the others are stored,
and that message becomes one dead letter with the database's error as its reason — if the error
is about data (:func:`~ingest.refusals.caused_by_data`; a lone message refused for another reason, a missing grant
say, is retried like an outage, since every message would meet it). The batch is
then acknowledged as usual. A refused message costs O(log n) extra statements, and the fleet's
other messages wait for it by that much, not forever. A batch keeps its messages' raw bytes
until it commits, for that dead letter; :data:`MAX_HELD_BYTES` bounds them.

Stopping (SIGTERM): take nothing new, commit what is held, acknowledge what committed. A write
still running :data:`STOP_GRACE_S` after the stop is abandoned, unacknowledged (the broker
delivers those messages again), so a stop during a database outage takes about that long.

Why this module is long: it is one class, :class:`Ingester`, whose receive path, device-registry
gate and writers read and write one set of per-session state (the filling batch, the sealed
queue, the unacknowledged and held counts, the acknowledgement turn) on every message, so the
acknowledge-after-commit order is checked in one place and the hot path calls into no other
module. What stands alone is elsewhere: :mod:`ingest.refusals` (what a failed write means),
:mod:`ingest.readiness` (waiting for the database), :func:`ingest.mqtt.refused_subscription`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from coldchain.runtime import utcnow
from coldchain.settings import Settings
from coldchain.telemetry import Limits, device_of_topic, parse_topic
from coldchain.telemetry_columns import parse_into
from ingest.mqtt import IngestClient, refused_subscription
from ingest.refusals import caused_by_data, refused_by_database
from ingest.sink import LOG_CHARS, Batch, DeadLetter, Sink, clip, dead_letter_for, storable

log = logging.getLogger(__name__)

#: A message from a device we do not know waits for a fresh load of the device registry (a logger
#: registered a moment ago is let in, not dead-lettered); loads happen at most this often, so a
#: flood of forged device ids costs at most a few queries a second and delays the messages behind
#: it by at most this long.
REGISTRY_RELOAD_S = 0.5
#: Batches in the database at once. Two overlap one batch's encoding with the previous one's
#: statement; ``coldchain ingest`` opens a pool of two connections for them.
WRITERS = 2
#: Raw payload bytes held for uncommitted messages before the ingester stops reading.
MAX_HELD_BYTES = 64 * 1024 * 1024
#: How long a write may still run after a stop was asked for.
STOP_GRACE_S = 1.5


class _Abandoned(Exception):
    """A write given up at stop, its outcome unknown; its messages stay unacknowledged."""


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


@dataclass(slots=True)
class _Pending:
    """One transaction's worth of messages, and what acknowledges them."""

    batch: Batch = field(default_factory=Batch)
    mids: list[int] = field(default_factory=list)  # QoS 1 packet ids, in arrival order
    messages: int = 0
    items: int = 0  # len(batch), as last counted
    started: float = 0.0  # time.monotonic() of the first message
    # Per message: topic, raw bytes, and where its items end in the batch's three lists, so a
    # batch the database refuses can be split by message (see _store).
    spans: list[tuple[str, bytes, int, int, int]] = field(default_factory=list)
    payload_bytes: int = 0

    def part(self, lo: int, hi: int) -> Batch:
        """The batch of messages lo..hi-1."""
        r0, s0, d0 = self.spans[lo - 1][2:] if lo else (0, 0, 0)
        r1, s1, d1 = self.spans[hi - 1][2:]
        b = self.batch
        return Batch(b.readings.slice(r0, r1), b.dead_letters[d0:d1], b.statuses[s0:s1])


_Raw = tuple[str, bytes, int, int]  # topic, payload, packet id, QoS


class Ingester:
    """Consumes the device topics of one broker in its own persistent session."""

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
        self._root = settings.mqtt.topic_root
        self._max_items = cfg.batch_max_readings
        self._max_age = cfg.batch_max_age_ms / 1000.0
        # Twice the batch size keeps one batch filling while the previous one commits.
        self._receive_maximum = cfg.receive_maximum or min(
            65535, max(2 * cfg.batch_max_readings, 100)
        )
        self._require_known = cfg.require_known_device
        self._base_limits = Limits(
            max_payload_bytes=cfg.max_payload_bytes,
            max_batch_readings=cfg.max_batch_readings,
            max_future=timedelta(seconds=cfg.max_future_s),
        )
        self._limits = self._base_limits
        self._known: frozenset[str] | None = None
        self._known_loaded = 0.0
        self.connected = asyncio.Event()
        # Per-session state, reset by _new_session().
        self._pending = _Pending()
        self._sealed: deque[_Pending] = deque()
        self._unacked = 0  # QoS 1 messages received this session and not yet acknowledged
        self._held = 0  # readings, dead letters and statuses parsed and not yet committed
        self._held_bytes = 0  # their messages' raw payloads
        # One batch in each writer, one ready and one filling: parsing further ahead only costs memory
        # (and garbage-collector time) when uploads carry many readings a message.
        self._max_held = (WRITERS + 2) * cfg.batch_max_readings
        self._accepting = False
        self._draining = False
        self._gate: list[_Raw] | None = None  # messages waiting for the device registry
        self._gate_task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._mqtt: IngestClient | None = None
        self._taken = self._acked_seq = 0  # batches handed to writers / acknowledged, in order
        self._ack_blocked = False
        self._ack_turn = asyncio.Condition()

    # --- topics ----------------------------------------------------------------------------

    def subscriptions(self) -> list[str]:
        """Plain subscriptions in our persistent session, which the broker restores after its own
        restart; ``$share/…`` only when a shared group is configured (it is not restored)."""
        root, group = self._root, self._s.mqtt.shared_group
        topics = [f"{root}/devices/+/telemetry", f"{root}/devices/+/status"]
        return topics if group is None else [f"$share/{group}/{topic}" for topic in topics]

    # --- the loop --------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set; then commit and acknowledge what is held, and return."""
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

    def _client(self) -> IngestClient:
        m = self._s.mqtt
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = m.session_expiry_s
        props.ReceiveMaximum = self._receive_maximum
        tls = (
            aiomqtt.TLSParameters(ca_certs=str(m.ca_file) if m.ca_file else None) if m.tls else None
        )
        return IngestClient(
            m.host,
            m.port,
            on_publish=self._on_publish,
            identifier=m.client_id,
            username=m.username,
            password=m.password.get_secret_value() if m.password else None,
            protocol=aiomqtt.ProtocolVersion.V5,
            clean_start=False,
            properties=props,
            keepalive=m.keepalive_s,
            tls_params=tls,
        )

    def _new_session(self) -> None:
        self._pending = _Pending()
        self._sealed.clear()
        self._unacked = self._held = self._held_bytes = 0
        self._accepting = self._draining = False
        self._gate = None
        self._wake = asyncio.Event()
        self._taken = self._acked_seq = 0
        self._ack_blocked = False
        self._ack_turn = asyncio.Condition()

    async def _session(self, stop: asyncio.Event) -> None:
        if self._require_known and self._known is None:
            # Before connecting: a backlog follows the CONNACK at once, and would otherwise
            # pile up unparsed behind the first message while the registry loads.
            load = asyncio.create_task(self._load_registry(), name="ingest-registry")
            stopped = asyncio.create_task(stop.wait(), name="ingest-stop")
            await asyncio.wait({load, stopped}, return_when=asyncio.FIRST_COMPLETED)
            load.cancel()
            stopped.cancel()
            if self._known is None:
                return  # asked to stop first
        self._new_session()
        client = self._mqtt = self._client()
        # A persistent session's queued messages follow the CONNACK at once, before SUBSCRIBE
        # is even answered: take them from the first byte (one we dropped would stay in
        # flight, unacknowledged, until the next reconnect).
        self._accepting = True
        async with client:
            # The writers start first: a backlog can fill the receive maximum before the SUBACK
            # arrives, and then only a commit (and its PUBACKs) lets us read on to the SUBACK.
            writers = [
                asyncio.create_task(self._write(client, stop), name=f"ingest-writer-{i}")
                for i in range(WRITERS)
            ]
            stopper = asyncio.create_task(stop.wait(), name="ingest-stop")
            subscriber = asyncio.create_task(self._subscribe(client), name="ingest-subscribe")
            try:
                waited: set[asyncio.Future[Any]] = {*writers, stopper, client.closed, subscriber}
                while True:
                    done, _ = await asyncio.wait(waited, return_when=asyncio.FIRST_COMPLETED)
                    if subscriber in done:
                        subscriber.result()  # a refused subscription ends the session
                        waited.discard(subscriber)
                    if done - {subscriber}:
                        break
                for writer in writers:
                    if writer.done():
                        writer.result()  # a writer only ends early by failing: raise that
                if client.closed.done():
                    self.connected.clear()
                # Stopping, or the connection is gone: take nothing new, and commit what we
                # hold. On a graceful stop its PUBACKs are queued ahead of aiomqtt's
                # DISCONNECT. On a lost connection they cannot be sent: the broker delivers
                # those messages again (a no-op for the primary key), unless it crashed and lost
                # them, and then our commit is the copy that survives.
                self._accepting = False
                self._draining = True
                self._seal()
                self._wake.set()
                await asyncio.gather(*writers)
                if client.closed.done():
                    client.closed.result()  # connection lost: raises MqttError, we reconnect
            finally:
                # On any other way out (an error), what we hold is dropped unacknowledged:
                # the broker delivers it again to the next session.
                self._accepting = False
                for task in (stopper, subscriber, *writers, self._gate_task):
                    if task is not None:
                        task.cancel()
                await asyncio.gather(stopper, subscriber, *writers, return_exceptions=True)
                if self._gate_task is not None:
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await self._gate_task
                    self._gate_task = None

    async def _subscribe(self, client: IngestClient) -> None:
        """Subscribe (again: the session may have the subscriptions already), then report it.

        A persistent session's backlog is delivered ahead of the SUBACK, so the SUBACK can take
        as long as reading that backlog (a million messages: most of a minute). Messages flow
        meanwhile, so this waits without a timeout, beside the session rather than before it;
        a dead connection ends the session through ``client.closed``.
        """
        for topic in self.subscriptions():
            granted = await client.subscribe(topic, qos=1, timeout=math.inf)
            refused = refused_subscription(granted)
            if refused is not None:
                # The broker PUBACKs readings that no subscription takes and drops them: a
                # refused subscription must end the session loudly, never look like success.
                log.error(
                    "the broker refused the subscription to %s (%s): readings are not being "
                    "stored. Check that this account may subscribe (the broker plugin's "
                    "plugin_opt_subscribers, the ACL's read rules; docs/PROTOCOL.md)",
                    topic,
                    refused,
                )
                raise aiomqtt.MqttError(f"subscription to {topic} refused: {refused}")
        self.connected.set()
        log.info("ingester subscribed to %s", ", ".join(self.subscriptions()))

    # --- receiving (called by the MQTT client, synchronously, for every PUBLISH) ------------

    def _on_publish(self, topic: str, payload: bytes, mid: int, qos: int) -> None:
        if not self._accepting:
            return  # stopping or disconnected: not acknowledged, so the broker keeps it
        if qos:
            self._unacked += 1
            if self._unacked >= self._receive_maximum:
                # We hold all the broker may send: commit what we have now, and read no more
                # until a commit frees room (see IngestClient.pause_reading for why we must).
                self._wake.set()
                if self._mqtt is not None:
                    self._mqtt.pause_reading()
        if self._gate is not None:
            self._gate.append((topic, payload, mid, qos))  # keep arrival order behind it
            return
        if self._require_known and self._unknown_device(topic):
            self._gate = [(topic, payload, mid, qos)]
            self._gate_task = asyncio.get_running_loop().create_task(
                self._reload_registry(), name="ingest-registry"
            )
            return
        self._absorb(topic, payload, mid, qos)

    def _absorb(self, topic: str, payload: bytes, mid: int, qos: int) -> None:
        pending = self._pending
        if not pending.messages:
            pending.started = time.monotonic()
            self._wake.set()  # the writer starts this batch's age clock
        pending.messages += 1
        self.stats.messages += 1
        batch = pending.batch
        stamps = batch.readings.ts_us  # one entry per reading (len() of the columns, inlined)
        before = len(stamps)
        # The readings go straight into the batch's columns (coldchain/telemetry_columns.py).
        parsed = parse_into(
            batch.readings, topic, payload, root=self._root, now=self._clock(), limits=self._limits
        )
        if parsed.status is not None:
            batch.statuses.append(parsed.status)
        if parsed.rejections:
            # One dead letter per message, its payload once (issue 11: not once per reading).
            accepted = len(stamps) - before
            dead = dead_letter_for(topic, payload, parsed.rejections, accepted=accepted)
            batch.dead_letters.append(dead)
            log.info("dead letter from %s: %s", clip(topic), clip(dead.reason))
        if qos:
            pending.mids.append(mid)
        n_readings, n_statuses, n_dead = (
            len(stamps), len(batch.statuses), len(batch.dead_letters)
        )  # fmt: skip
        pending.spans.append((topic, payload, n_readings, n_statuses, n_dead))
        n_bytes = len(payload)
        pending.payload_bytes += n_bytes
        self._held_bytes += n_bytes
        size = n_readings + n_statuses + n_dead
        self._held += size - pending.items
        pending.items = size
        if size >= self._max_items:
            self._seal()
        if (
            self._held >= self._max_held or self._held_bytes >= MAX_HELD_BYTES
        ) and self._mqtt is not None:
            self._mqtt.pause_reading()  # resumed by a writer once a commit frees room

    def _seal(self) -> None:
        """Close the filling batch and queue it for the writer."""
        if self._pending.messages:
            self._sealed.append(self._pending)
            self._pending = _Pending()
            self._wake.set()

    # --- the device registry -----------------------------------------------------------------

    def _unknown_device(self, topic: str) -> bool:
        """True when the registry (if loaded) does not list this message's device. A topic that
        is no device's is not waited for: parsing refuses it, whatever the registry says."""
        if self._known is None:
            return True
        device = device_of_topic(self._root, topic)
        return device is not None and device not in self._known

    async def _load_registry(self) -> None:
        """Load the device registry, retrying while the database is away."""
        backoff = 0.2
        while True:
            began = time.monotonic()
            try:
                known = await self._sink.known_devices()
                break
            except Exception as exc:  # database down or restarting: the messages wait
                log.warning(
                    "loading the device registry failed (%s); retry in %.1f s", exc, backoff
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)
        self._known = known
        self._known_loaded = began  # the snapshot is as of the query's start
        base = self._base_limits
        self._limits = dataclasses.replace(base, known_devices=known)

    async def _reload_registry(self) -> None:
        """Reload the registry, then release the messages that waited for it, in order.

        A message that was waiting before the load began is judged by the fresh registry (an
        unknown device is dead-lettered). One that arrived while the query ran may come from a
        device registered after the query's snapshot: if it is still unknown, it and those
        behind it wait for the next load.
        """
        while True:
            wait = self._known_loaded + REGISTRY_RELOAD_S - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            gate = self._gate or []
            judged = len(gate)
            await self._load_registry()
            gate = self._gate or []
            for i, raw in enumerate(gate):
                if not self._accepting:
                    break  # unacknowledged: the broker delivers these again
                if i >= judged and self._unknown_device(raw[0]):
                    self._gate = gate[i:]
                    break
                self._absorb(*raw)
            else:
                self._gate = None
                return
            if not self._accepting:
                self._gate = None
                return

    # --- writing ---------------------------------------------------------------------------

    async def _write(self, client: IngestClient, stop: asyncio.Event) -> None:
        """Take batches in arrival order, commit, and acknowledge them in that same order.

        Several of these run at once (:data:`WRITERS`): while one batch's statement runs in the
        database, the next one is encoded and sent, so neither side waits for the other. A
        batch committed ahead of its predecessor waits for it before its PUBACKs go out.
        """
        while (item := await self._next_batch()) is not None:
            seq = self._taken = self._taken + 1
            committed = await self._commit(item, stop)
            async with self._ack_turn:
                await self._ack_turn.wait_for(partial(self._acks_reached, seq - 1))
                if not committed:
                    # Asked to stop while the database is away: this batch and every later one
                    # stay unacknowledged, and the broker delivers them again.
                    self._ack_blocked = True
                if not self._ack_blocked:
                    client.ack_in_order(item.mids)
                    self._unacked -= len(item.mids)
                if committed:
                    self._held -= item.items
                    self._held_bytes -= item.payload_bytes
                if (
                    self._unacked < self._receive_maximum
                    and self._held < self._max_held
                    and self._held_bytes < MAX_HELD_BYTES
                ):
                    client.resume_reading()
                self._acked_seq = seq
                self._ack_turn.notify_all()
            if not committed:
                return

    def _acks_reached(self, seq: int) -> bool:
        return self._acked_seq == seq

    async def _next_batch(self) -> _Pending | None:
        """The next batch to commit; None once draining and nothing is left."""
        while True:
            if self._sealed:
                return self._sealed.popleft()
            pending = self._pending
            timeout: float | None = None
            if pending.messages:
                timeout = self._max_age - (time.monotonic() - pending.started)
                if timeout <= 0 or self._draining or self._unacked >= self._receive_maximum:
                    self._seal()
                    continue
            elif self._draining:
                return None
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    async def _commit(self, item: _Pending, stop: asyncio.Event) -> bool:
        """Commit a batch, retrying while the database is away, splitting what it refuses.

        Returns False only when asked to stop before everything committed: the batch is then
        not acknowledged, and the broker delivers it again later (what did commit is then a
        no-op for the primary key; a dead letter among it is written a second time).
        """
        if not item.spans:
            return True
        return await self._store(item, 0, len(item.spans), item.batch, stop)

    async def _store(
        self, item: _Pending, lo: int, hi: int, batch: Batch, stop: asyncio.Event
    ) -> bool:
        """Commit messages lo..hi-1 of ``item`` (``batch``); split it if the database refuses it."""
        refused = await self._write_batch(batch, stop, splittable=True)
        if refused is None:
            return True
        if refused is False:
            return False
        if hi - lo > 1:
            mid = (lo + hi) // 2
            log.warning(
                "the database refused a batch of %d messages (%s); splitting it",
                hi - lo,
                clip(str(refused)),
            )
            return await self._store(item, lo, mid, item.part(lo, mid), stop) and (
                await self._store(item, mid, hi, item.part(mid, hi), stop)
            )
        topic, payload = item.spans[lo][:2]
        if isinstance(refused, BaseException) and not caused_by_data(refused):
            # Not this message's fault: every message would meet it. Hold the batch and retry
            # until the deployment is mended (or we are stopped), as for an outage.
            log.error(
                "the database refuses a lone message for a reason that is not its data (%s): "
                "check the schema and the grants; retrying, nothing acknowledged",
                clip(str(refused)),
            )
            return await self._write_batch(batch, stop, splittable=False) is None
        parsed_topic = parse_topic(self._root, topic)
        reason = storable(
            clip(f"the database refused this message: {type(refused).__name__}: {refused}", 500)
        )
        dead = DeadLetter(
            storable(topic),
            reason,
            payload,
            parsed_topic.device_id if parsed_topic else None,
            reasons="[]",
        )
        log.warning("dead letter from %s: %s", clip(topic), clip(reason, LOG_CHARS))
        outcome = await self._write_batch(Batch(dead_letters=[dead]), stop, splittable=False)
        return outcome is None

    async def _write_batch(
        self, batch: Batch, stop: asyncio.Event, *, splittable: bool
    ) -> BaseException | bool | None:
        """Write, retrying with backoff while the database is away.

        None once committed; False when asked to stop first; the exception when the database
        refused the data and ``splittable`` (otherwise a refusal is retried like an outage: a
        lone dead letter is made storable, so a refusal of it means the database is unwell).
        """
        backoff = 0.2
        while True:
            started = time.perf_counter()
            try:
                new = await self._write_until_stopped(batch, stop)
            except _Abandoned:
                log.warning("stopping with %d uncommitted items; not acknowledged", len(batch))
                return False
            except Exception as exc:
                if splittable and refused_by_database(exc):
                    return exc
                self.stats.commit_retries += 1
                if stop.is_set():
                    log.warning(
                        "stopping with %d uncommitted items (%s); not acknowledged",
                        len(batch),
                        clip(str(exc)),
                    )
                    return False
                log.warning(
                    "commit of %d items failed (%s); retrying in %.1f s",
                    len(batch),
                    clip(str(exc)),
                    backoff,
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), backoff)
                backoff = min(backoff * 2, 10.0)
                continue
            self.stats.last_commit_ms = (time.perf_counter() - started) * 1000
            self.stats.batches += 1
            self.stats.readings_new += new
            self.stats.readings_duplicate += len(batch.readings) - new
            self.stats.dead_letters += len(batch.dead_letters)
            self.stats.statuses += len(batch.statuses)
            return None

    async def _write_until_stopped(self, batch: Batch, stop: asyncio.Event) -> int:
        """``sink.write``, given up :data:`STOP_GRACE_S` after a stop (raises _Abandoned)."""
        write = asyncio.ensure_future(self._sink.write(batch))
        if not stop.is_set():
            stopped = asyncio.ensure_future(stop.wait())
            await asyncio.wait({write, stopped}, return_when=asyncio.FIRST_COMPLETED)
            stopped.cancel()
        if not write.done():
            await asyncio.wait({write}, timeout=STOP_GRACE_S)
        if not write.done():
            write.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await write
            raise _Abandoned
        return write.result()


__all__ = ["IngestStats", "Ingester"]
