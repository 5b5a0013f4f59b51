"""The ingester's MQTT client: aiomqtt for the connection, a bulk path for PUBLISH and PUBACK.

aiomqtt (over paho) is built for applications that handle one message at a time: for every
PUBLISH, paho reads the socket three times (type, length, body), decodes MQTT 5 properties into
a ``Properties`` object, runs the topic matcher and builds an ``MQTTMessage``; aiomqtt wraps it in
its own ``Message``, queues it, and its async iterator creates a task and an ``asyncio.wait`` to
hand it over. Profiled while draining a backlog, that was over half of the ingester's time,
before any parsing or database work. The other way round, each ``paho.ack()`` is one ``send()``.

:class:`IngestClient` keeps everything aiomqtt does for the connection (connect in an executor,
CONNACK, SUBSCRIBE, keep-alive, DISCONNECT, TLS, reconnection by the caller's outer loop) and
changes the hot paths:

- **receive**: its socket callback reads up to 64 KiB at a time and frames packets from that
  buffer. A PUBLISH is decoded in place (topic, packet id, payload; its MQTT 5 properties are
  skipped, since we ask for none: no topic aliases, no subscription identifiers) and handed
  *synchronously* to ``on_publish(topic, payload, mid, qos)``; every other packet (CONNACK,
  SUBACK, PINGRESP, DISCONNECT, …) goes to paho's own handler exactly as paho's reader would.
  Each callback handles at most ``read_budget`` packets or ``read_budget_s`` of work, so the
  database writers' replies, on the same event loop, are not held up;
- **flow control**: :meth:`IngestClient.pause_reading` / :meth:`IngestClient.resume_reading`
  stop and restart taking packets off the socket (the ingester pauses at its limits);
- **acknowledge**: :meth:`IngestClient.ack_in_order` writes the PUBACKs of a committed batch as
  one buffer, in the order given (MQTT 5 §4.6 wants arrival order), with one ``send()``.

Acknowledgement stays manual (paho's ``manual_ack``): nothing is acknowledged that the caller did
not pass to :meth:`ack_in_order`. This leans on paho internals that have been stable across
paho-mqtt 2.x (``_sock_recv``, ``_packet_handle``, ``_in_packet``, ``_packet_queue``,
``_loop_rc_handle``); :data:`_PAHO_HOOKS` is checked at import so an incompatible paho fails at
start-up with a clear message rather than misbehaving.
"""

from __future__ import annotations

import asyncio
import logging
import struct
import time
from collections.abc import Callable, Sequence
from typing import Any

import aiomqtt
import paho.mqtt.client as paho
from paho.mqtt.enums import MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.exception import MalformedPacket

log = logging.getLogger(__name__)

#: ``on_publish(topic, payload, packet_id, qos)``, called on the event loop for each PUBLISH.
OnPublish = Callable[[str, bytes, int, int], None]

_PAHO_HOOKS = ("_sock_recv", "_packet_handle", "_packet_queue", "_loop_rc_handle")
_missing = [name for name in _PAHO_HOOKS if not hasattr(paho.Client, name)]
if _missing:  # pragma: no cover - only with an incompatible paho-mqtt
    raise ImportError(
        f"paho-mqtt {getattr(paho, '__version__', '?')} lacks {', '.join(_missing)}, which "
        "ingest.mqtt uses for bulk receive; install the paho-mqtt version in requirements.lock"
    )

_PUBLISH = 0x30
_PUBACK = 0x40
_RECV_SIZE = 64 * 1024
_SUCCESS = MQTTErrorCode.MQTT_ERR_SUCCESS
_AGAIN = MQTTErrorCode.MQTT_ERR_AGAIN


def _fresh_in_packet() -> Any:  # paho's private _InPacket TypedDict
    """paho's idle reader state (what it resets ``_in_packet`` to after every packet)."""
    return {
        "command": 0,
        "have_remaining": 0,
        "remaining_count": [],
        "remaining_mult": 1,
        "remaining_length": 0,
        "packet": bytearray(b""),
        "to_process": 0,
        "pos": 0,
    }


class _PacketReader:
    """Frames MQTT packets out of large socket reads on behalf of one paho client."""

    def __init__(self, client: paho.Client, on_publish: OnPublish) -> None:
        self._c = client
        self._on_publish = on_publish
        self._buf = bytearray()
        self._pos = 0
        self._v5 = client._protocol == MQTTProtocolVersion.MQTTv5
        self.paused = False

    def read(self, budget: int, budget_s: float) -> bool:
        """Handle up to ``budget`` packets, or ``budget_s`` seconds' worth; True when the caller
        should call again soon.

        The time budget matters for uploads of many readings: 32 of those are 2,000 readings
        to parse, long enough to hold up the database writers' replies on the same loop.
        Data can sit in our buffer while the socket itself has nothing new, so a callback that
        stops on a budget must be rescheduled: the socket alone would not wake it again.
        """
        c = self._c
        deadline = time.monotonic() + budget_s
        for _ in range(budget):
            if c._sock is None or self.paused:
                return False
            rc = self._one()
            if rc == _AGAIN:
                return False
            if rc != _SUCCESS:
                c._loop_rc_handle(rc)  # closes the socket and reports the disconnection
                return False
            if time.monotonic() >= deadline:
                break
        return True

    def _frame(self) -> tuple[int, int, int] | MQTTErrorCode | None:
        """(header, body start, body end) of the next whole packet in the buffer, or None."""
        buf, pos = self._buf, self._pos
        n = len(buf)
        if n - pos < 2:
            return None
        length, shift, p = 0, 0, pos + 1
        while True:
            if p >= n:
                return None
            byte = buf[p]
            p += 1
            length |= (byte & 0x7F) << shift
            if byte < 0x80:
                break
            shift += 7
            if shift > 21:  # more than four length bytes: not MQTT
                return MQTTErrorCode.MQTT_ERR_PROTOCOL
        if p + length > n:
            return None
        return buf[pos], p, p + length

    def _one(self) -> MQTTErrorCode:
        c = self._c
        while True:
            framed = self._frame()
            if isinstance(framed, tuple):
                break
            if framed is not None:
                return framed
            if self._pos:
                del self._buf[: self._pos]
                self._pos = 0
            try:
                data = c._sock_recv(_RECV_SIZE)
            except BlockingIOError:
                return _AGAIN
            except OSError as err:
                # Routine (a reset by the broker, a takeover): the ingester reports the lost
                # connection at WARNING when it reconnects, so this is not an ERROR.
                c._easy_log(paho.MQTT_LOG_DEBUG, "failed to receive on socket: %s", err)
                return MQTTErrorCode.MQTT_ERR_CONN_LOST
            if not data:
                return MQTTErrorCode.MQTT_ERR_CONN_LOST
            self._buf += data
            with c._msgtime_mutex:
                c._last_bytes_received = paho.time_func()  # keep-alive bookkeeping
        header, start, end = framed
        self._pos = end
        if header & 0xF0 == _PUBLISH and header & 0x06 != 0x04:  # QoS 0 or 1 (QoS 2: paho)
            return self._publish(header, start, end)
        # Anything else is handed to paho as its own reader would have, whole.
        packet = _fresh_in_packet()
        packet.update(
            command=header,
            have_remaining=1,
            remaining_length=end - start,
            packet=bytearray(self._buf[start:end]),
        )
        c._in_packet = packet
        try:
            rc: MQTTErrorCode = c._packet_handle()
        except MalformedPacket as exc:
            c._easy_log(paho.MQTT_LOG_DEBUG, "Received malformed packet: %s", exc)
            rc = MQTTErrorCode.MQTT_ERR_PROTOCOL
        c._in_packet = _fresh_in_packet()
        return rc

    def _publish(self, header: int, start: int, end: int) -> MQTTErrorCode:
        buf = self._buf
        if end - start < 2:
            return MQTTErrorCode.MQTT_ERR_PROTOCOL
        qos = (header >> 1) & 0x03
        p = start + 2 + (buf[start] << 8 | buf[start + 1])
        # Invalid UTF-8 cannot pass a conforming broker; if it does, the replacement character
        # fails the device-topic check and the message is dead-lettered, not dropped.
        topic = buf[start + 2 : p].decode("utf-8", "replace")
        mid = 0
        if qos:
            mid = buf[p] << 8 | buf[p + 1]
            p += 2
        if self._v5:
            # Properties are skipped: we announce no topic-alias maximum (so the broker sends
            # whole topics) and use no subscription identifiers; nothing else concerns us.
            plen, shift = 0, 0
            while True:
                byte = buf[p]
                p += 1
                plen |= (byte & 0x7F) << shift
                if byte < 0x80:
                    break
                shift += 7
            p += plen
        if p > end:
            return MQTTErrorCode.MQTT_ERR_PROTOCOL
        self._on_publish(topic, bytes(buf[p:end]), mid, qos)
        return _SUCCESS


class IngestClient(aiomqtt.Client):
    """An aiomqtt client whose messages go to a callback and whose PUBACKs go out in bulk.

    Use it like ``aiomqtt.Client`` (``async with``, ``subscribe``); do not iterate
    ``messages``: every PUBLISH is passed to ``on_publish`` instead. :attr:`closed` completes
    (with an :class:`aiomqtt.MqttError`) when the connection is lost.
    """

    def __init__(
        self,
        hostname: str,
        port: int = 1883,
        *,
        on_publish: OnPublish,
        read_budget: int = 64,
        read_budget_s: float = 0.002,
        **kwargs: Any,
    ) -> None:
        super().__init__(hostname, port, **kwargs)
        self._client.manual_ack_set(True)
        self._sink = on_publish
        self._read_budget = read_budget
        self._read_budget_s = read_budget_s
        self._reader = _PacketReader(self._client, on_publish)
        self._on_readable: Callable[[], None] | None = None
        self.closed: asyncio.Future[None] = self._loop.create_future()

    def ack_in_order(self, mids: Sequence[int]) -> None:
        """Acknowledge these QoS 1 messages, in the given order, with one write.

        A lost connection drops the acknowledgements: the broker then delivers those messages
        again to the next session, and the database's primary key makes that a no-op.
        """
        if not mids or self._client._sock is None:
            return
        # A PUBACK without reason code or properties: 0x40, length 2, packet id (MQTT 5 §3.4.2.1).
        data = struct.pack(f">{len(mids)}I", *[0x40020000 | mid for mid in mids])
        self._client._packet_queue(_PUBACK, data, 0, 0)

    def pause_reading(self) -> None:
        """Stop taking packets off the socket; the broker's excess waits in TCP and the broker.

        The receive maximum should make this unnecessary, but Mosquitto 2.0.11 lets one PUBACK
        release up to a whole receive-maximum of queued messages, so after the first batch the
        broker alone bounds nothing. While paused the keep-alive's PINGRESP is not read either:
        a pause longer than about twice the keep-alive (a database outage) ends the connection,
        and the next session gets the unacknowledged messages again; nothing is lost.
        """
        if not self._reader.paused:
            self._reader.paused = True
            sock = self._client._sock
            if sock is not None:
                self._loop.remove_reader(sock.fileno())

    def resume_reading(self) -> None:
        """Take packets off the socket again, starting with what is already buffered."""
        if self._reader.paused:
            self._reader.paused = False
            sock = self._client._sock
            if sock is not None and self._on_readable is not None:
                self._loop.add_reader(sock.fileno(), self._on_readable)
                self._loop.call_soon(self._on_readable)

    def _lost(self, exc: BaseException) -> None:
        if not self.closed.done():
            error = exc if isinstance(exc, aiomqtt.MqttError) else aiomqtt.MqttError(str(exc))
            if error is not exc:
                error.__cause__ = exc
            self.closed.set_exception(error)
            # Retrieved or not, this must not be logged as "never retrieved" at shutdown.
            self.closed.exception()

    # --- paho callbacks (aiomqtt registers these bound methods, so overriding them is enough) --

    def _on_socket_open(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        loop = self._loop

        def on_readable() -> None:
            try:
                more = self._reader.read(self._read_budget, self._read_budget_s)
            except Exception as exc:  # a broken socket, or a bug in on_publish: end the session
                self._lost(exc)
                if not self._disconnected.done():
                    self._disconnected.set_exception(exc)
                    self._disconnected.exception()  # reported through `closed`
                return
            if more:
                loop.call_soon(on_readable)

        def create_misc_task() -> None:
            self._misc_task = loop.create_task(self._misc_loop())

        def start_reading() -> None:
            if not self._reader.paused:
                loop.add_reader(sock.fileno(), on_readable)

        self._on_readable = on_readable
        # paho calls this from the executor thread that runs connect().
        loop.call_soon_threadsafe(start_reading)
        loop.call_soon_threadsafe(create_misc_task)

    def _on_disconnect(
        self,
        client: paho.Client,
        userdata: Any,
        flags: paho.DisconnectFlags,
        reason_code: Any,
        properties: Any = None,
    ) -> None:
        super()._on_disconnect(client, userdata, flags, reason_code, properties)
        if self._disconnected.done() and not self._disconnected.cancelled():
            # aiomqtt's messages iterator would retrieve this; we report through `closed`.
            self._disconnected.exception()
        self._lost(aiomqtt.MqttError(f"disconnected: {reason_code}"))

    def _on_subscribe(
        self,
        client: paho.Client,
        userdata: Any,
        mid: int,
        reason_codes: list[Any],
        properties: Any = None,
    ) -> None:
        # A SUBACK can outlive its SUBSCRIBE call: a persistent session's backlog arrives ahead
        # of it, and if the session ends meanwhile (stop, or a writer failing) the call is
        # cancelled and forgets its packet id while the socket is still read until DISCONNECT.
        # aiomqtt would log that late SUBACK as an ERROR with a KeyError traceback; it is
        # routine (the broker keeps the subscription in the session; the next session
        # subscribes again anyway), so it is noted at DEBUG instead.
        if mid not in self._pending_subscribes:
            log.debug("SUBACK %d for a subscription no longer awaited (session ending)", mid)
            return
        super()._on_subscribe(client, userdata, mid, reason_codes, properties)

    def _on_message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        # Only what the bulk reader hands to paho lands here (a QoS 2 delivery, say).
        self._sink(message.topic, bytes(message.payload), message.mid, message.qos)


def refused_subscription(granted: Sequence[Any]) -> str | None:
    """The broker's reason if a SUBACK refused the subscription, else None.

    aiomqtt returns the SUBACK's reason codes (MQTT 5: ``ReasonCode`` objects) or granted QoS
    values (MQTT 3.1.1: ints, 0x80 for failure); anything at or above 0x80 is a refusal.
    """
    for code in granted:
        value = code.value if hasattr(code, "value") else int(code)
        if value >= 0x80:
            return f"{code} (0x{value:02x})" if hasattr(code, "value") else f"0x{value:02x}"
    return None


__all__ = ["IngestClient", "OnPublish", "refused_subscription"]
