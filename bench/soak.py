"""Soak: issue 11's attack mix against a real local stack, then an honest count of what held.

Run: ``.venv/bin/python bench/soak.py`` (10 minutes of attack; about 12 in all with set-up and
drain), or ``--quick`` (75 s of attack, five ingester kills, a poison message every 15 s).
``--help`` lists the knobs. Everything listens on, and all traffic goes to, 127.0.0.1.

What runs, on free ports and in a temporary folder (``bench._common.local_stack``, removed at
the end; ``--logs DIR`` keeps the logs): PostgreSQL with TimescaleDB; Mosquitto with the password
file and ACL that ``coldchain devices provision`` writes (:func:`security.devices.provision`: each
logger its own credentials, the ingester its service account); ``coldchain ingest`` and
``coldchain web`` as subprocesses, started as ``coldchain up`` starts them. Against them, at once:

- the fleet: ``--loggers`` registered loggers (500), each on its own MQTT connection with its
  own user name and password, publishing a QoS 1 reading every ``--interval`` seconds and, now
  and then, a 60-reading upload of buffered readings. Like a logger, each keeps one message in
  flight and re-sends it after a reconnect until the broker acknowledges it; readings due while
  it is disconnected queue up and go out, one message at a time, when it is back (a burst);
- ``--kills`` SIGKILLs of the ingester (40), each restarted at once (a crash the soak did not
  cause is counted and restarted too);
- one SIGKILL of the PostgreSQL postmaster and one of the broker, each restarted;
- a poison message every ``--poison-every`` seconds, from a logger's own credentials, rotating
  among the five of the issue (:data:`POISONS`);
- ``--api-clients`` concurrent API clients (50), in a process of their own so that their clock is
  not the fleet's: half with a person's bearer token, half with an API key, each looping over a
  mix of read routes and sending its next request as soon as it has the answer
  (``--api-think-ms`` adds a random pause).

How it counts, at the end, after the ingester has drained (a bounded wait):

- acknowledged: the (device, ts) keys of the readings whose PUBLISH got a PUBACK, publisher side;
- stored: those keys present in ``readings``; lost = acknowledged - stored (examples printed);
  changed: stored with another temperature than the one acknowledged;
- duplicated: (device, ts) keys that ``readings`` holds more than once (GROUP BY ... HAVING; its
  primary key should make it 0, and this checks it);
- dead letters: rows in ``dead_letters`` and their payload bytes, against the poison sent;
- API: p50/p95/p99 of every answered request, counts by status class, 5xx and connection errors.

Exit status: 1 when an acknowledged reading is lost, changed or duplicated; 2 when the stack
could not be set up or the run overran its time budget (the stack is removed either way).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import dataclasses
import math
import multiprocessing
import os
import random
import re
import secrets
import shutil
import signal
import struct
import sys
import time
from collections import Counter, deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
from psycopg.rows import dict_row

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import (
    Stack,
    _packet,
    _str16,
    children_of,
    count_rows,
    ingester_process,
    local_stack,
    postmaster_pid,
    seed_devices,
    wait_for_log,
)
from bench.web_pages import USERNAME, add_viewer, web_process
from coldchain.settings import Settings
from coldchain.telemetry import (
    Reading,
    batch_payload,
    reading_payload,
    status_topic,
    telemetry_topic,
)
from launcher.localstack import MosquittoBroker, PostgresCluster
from security import accounts, devices
from security.audit import AuditContext

ATTACKER = "SOAK-ATTACKER"
BURST_READINGS = 60
#: How long, after the attack, loggers may still send what they hold before they give up.
FLUSH_S = 20.0
#: The drain gives up when no acknowledged reading arrives for this long (longer than the
#: ingester's longest reconnect back-off, 30 s).
STALL_S = 45.0
#: A logger that has no PUBACK this long after a PUBLISH drops the connection and re-sends.
ACK_TIMEOUT_S = 30.0
CTX = AuditContext("cli:bench-soak", "admin", "bench/soak.py", "soak set-up")


# --- the plan: pure ------------------------------------------------------------------------


def _iso_ms(ts: datetime) -> str:
    return ts.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _big_invalid_batch(device: str, now: datetime, limit: int) -> bytes:
    """6,000 readings, every one out of range, padded to just under ``limit`` bytes (so that the
    ingester parses it rather than refusing it whole for its size)."""
    epoch_ms = int(now.timestamp() * 1000)
    rows = ",".join(f'{{"ts":{epoch_ms - i * 1000},"temp_c":1000}}' for i in range(6000))
    head = f'{{"device_id":"{device}","readings":[{rows}],"pad":"'
    tail = '"}'
    pad = limit - 200 - len(head) - len(tail)
    return (head + "x" * max(pad, 0) + tail).encode()


def _nul_status(device: str, now: datetime, limit: int) -> tuple[str, bytes]:
    return "status", f'{{"device_id":"{device}","online":true,"firmware":"\\u0000"}}'.encode()


def _huge_integer(device: str, now: datetime, limit: int) -> tuple[str, bytes]:
    digits = "9" * 5000
    body = f'{{"device_id":"{device}","ts":"{_iso_ms(now)}","temp_c":{digits}}}'
    return "telemetry", body.encode()


def _invalid_batch(device: str, now: datetime, limit: int) -> tuple[str, bytes]:
    return "telemetry", _big_invalid_batch(device, now, limit)


def _negative_epoch(device: str, now: datetime, limit: int) -> tuple[str, bytes]:
    ms = -86_400_000 - random.randrange(1_000_000)  # a day before 1970, a new key each time
    return "telemetry", f'{{"device_id":"{device}","ts":{ms},"temp_c":5.0}}'.encode()


def _string_temp(device: str, now: datetime, limit: int) -> tuple[str, bytes]:
    return "telemetry", f'{{"device_id":"{device}","ts":"{_iso_ms(now)}","temp_c":"5.5"}}'.encode()


#: The poison messages of issue 11, sent in this order, round and round (``--poisons`` picks
#: some): key -> (name, builder).
POISONS = {
    "nul": ("NUL in a status string", _nul_status),
    "bigint": ("5,000-digit integer", _huge_integer),
    "batch": ("256 KiB of 6,000 invalid readings", _invalid_batch),
    "epoch": ("negative epoch", _negative_epoch),
    "string": ('"5.5" as temp_c', _string_temp),
}


@dataclass(frozen=True, slots=True)
class Plan:
    """What to run (see ``--help``)."""

    seconds: float
    loggers: int
    kills: int
    api_clients: int
    interval_s: float
    burst_every_s: float
    poison_every_s: float
    drain_timeout_s: float
    api_think_ms: float
    pg_kill: bool = True
    broker_kill: bool = True
    poisons: tuple[str, ...] = tuple(POISONS)


def schedule(plan: Plan) -> list[tuple[float, str]]:
    """When each fault happens, in seconds from the start: ingester kills spread evenly over
    5–90 % of the run; PostgreSQL near 35 % and the broker near 65 %, each half-way between two
    ingester kills, so that each fault's effect shows on its own. The chaos task runs them one
    after the other: a slow restart delays the next fault rather than overlapping it."""
    k = plan.kills

    def at(fraction: float) -> float:
        return plan.seconds * (0.05 + 0.85 * fraction)

    events = [(at((i + 0.5) / k), "ingester") for i in range(k)]
    for wanted, what, enabled in (
        (0.35, "postgres", plan.pg_kill),
        (0.65, "broker", plan.broker_kill),
    ):
        if enabled:
            between = min(max(round(wanted * k), 1), k - 1) if k >= 2 else None
            events.append((at(between / k) if between else plan.seconds * wanted, what))
    return sorted(events)


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The nearest-rank ``q`` quantile (0 < q <= 1) of ascending values; NaN when empty."""
    if not sorted_values:
        return math.nan
    return sorted_values[max(0, math.ceil(q * len(sorted_values)) - 1)]


# --- the fleet: one MQTT 3.1.1 connection per logger, on asyncio streams --------------------


@dataclass
class Tally:
    """What the publishers saw; keys are (device_id, ts)."""

    started: float
    acked: dict[tuple[str, datetime], tuple[float, float]] = field(default_factory=dict)
    messages_sent: int = 0  # PUBLISH packets written, re-sends included
    messages_acked: int = 0
    readings_acked: int = 0  # with repeats, if a key were ever acknowledged twice
    resends: int = 0
    connects: int = 0
    refused: Counter[str] = field(default_factory=Counter)  # CONNACK codes and socket errors
    given_up: int = 0  # readings never acknowledged by the end of the flush window
    poison_sent: Counter[str] = field(default_factory=Counter)
    poison_acked: int = 0
    failures: list[str] = field(default_factory=list)  # the soak's own tasks that raised

    def ack(self, device: str, readings: Sequence[tuple[datetime, float]]) -> None:
        t = time.monotonic() - self.started
        for ts, temp in readings:
            self.acked[(device, ts)] = (temp, t)
        self.messages_acked += 1
        self.readings_acked += len(readings)


@dataclass
class Message:
    topic: bytes
    payload: bytes
    readings: tuple[tuple[datetime, float], ...]
    sent_before: bool = False


class Refused(ConnectionError):
    """The broker answered CONNECT with a refusal (bad credentials, for instance)."""


class Link:
    """One authenticated MQTT 3.1.1 connection (clean session) that publishes at QoS 1 and
    waits for each PUBACK (a logger keeps one message in flight)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self._mid = 0

    @classmethod
    async def open(cls, port: int, user: str, password: str, client_id: str) -> Link:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 10)
        # protocol MQTT level 4; flags: user name, password, clean session; keep-alive off (the
        # PUBACK timeout notices a dead broker)
        body = (
            _str16(b"MQTT")
            + bytes([4, 0xC2])
            + struct.pack("!H", 0)
            + _str16(client_id.encode())
            + _str16(user.encode())
            + _str16(password.encode())
        )
        writer.write(_packet(0x10, body))
        link = cls(reader, writer)
        try:
            header, ack = await asyncio.wait_for(link._read_packet(), 10)
            if header >> 4 != 2 or len(ack) != 2 or ack[1] != 0:
                raise Refused(f"CONNACK {ack.hex() or header}")
        except BaseException:
            link.close()
            raise
        return link

    async def _read_packet(self) -> tuple[int, bytes]:
        header = (await self.reader.readexactly(1))[0]
        length, shift = 0, 0
        while True:
            byte = (await self.reader.readexactly(1))[0]
            length |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                break
        return header, await self.reader.readexactly(length)

    async def publish(self, msg: Message, wait_s: float = ACK_TIMEOUT_S) -> None:
        """PUBLISH at QoS 1 (DUP set on a re-send); return once the broker acknowledged it."""
        self._mid = self._mid % 65535 + 1
        mid = struct.pack("!H", self._mid)
        header = 0x32 | (0x08 if msg.sent_before else 0)
        self.writer.write(_packet(header, _str16(msg.topic) + mid + msg.payload))
        msg.sent_before = True
        await self.writer.drain()

        async def puback() -> None:
            while True:
                kind, body = await self._read_packet()
                if kind >> 4 == 4 and body[:2] == mid:
                    return

        await asyncio.wait_for(puback(), wait_s)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.write(b"\xe0\x00")  # DISCONNECT
            self.writer.close()


_LINK_ERRORS = (OSError, EOFError, asyncio.IncompleteReadError, TimeoutError)


class Logger:
    """One registered logger on its own connection and credentials."""

    def __init__(
        self, device: str, password: str, port: int, root: str, plan: Plan, tally: Tally
    ) -> None:
        self.device, self.password, self.port, self.plan, self.tally = (
            device,
            password,
            port,
            plan,
            tally,
        )
        self.topic = telemetry_topic(root, device).encode()
        self.outbox: deque[Message] = deque()
        self.link: Link | None = None
        now = datetime.now(UTC)
        self._last_ts = now.replace(microsecond=now.microsecond // 1000 * 1000)
        self._backfill = self._last_ts - timedelta(hours=1)  # buffered uploads: older readings
        self._rng = random.Random(device)

    def _now_ts(self) -> datetime:
        """Now, to the millisecond, strictly after this logger's previous reading."""
        now = datetime.now(UTC)
        now = now.replace(microsecond=now.microsecond // 1000 * 1000)
        self._last_ts = max(now, self._last_ts + timedelta(milliseconds=1))
        return self._last_ts

    def _temp(self) -> float:
        return round(self._rng.uniform(2.0, 8.0), 2)

    def _due(self) -> None:
        """Queue what is due now: one reading, and sometimes a buffered upload before it."""
        if self._rng.random() < self.plan.interval_s / self.plan.burst_every_s:
            older = []
            for _ in range(BURST_READINGS):
                self._backfill -= timedelta(seconds=1)
                older.append(Reading(self.device, self._backfill, self._temp()))
            older.reverse()
            self.outbox.append(
                Message(
                    self.topic,
                    batch_payload(self.device, older),
                    tuple((r.ts, r.temp_c or 0.0) for r in older),
                )
            )
        r = Reading(self.device, self._now_ts(), self._temp())
        self.outbox.append(Message(self.topic, reading_payload(r), ((r.ts, r.temp_c or 0.0),)))

    async def _connect(self) -> bool:
        try:
            self.link = await Link.open(self.port, self.device, self.password, self.device)
        except Refused as exc:
            self.tally.refused[str(exc)] += 1
            return False
        except _LINK_ERRORS as exc:
            self.tally.refused[type(exc).__name__] += 1
            return False
        self.tally.connects += 1
        return True

    def _drop(self) -> None:
        if self.link is not None:
            self.link.close()
            self.link = None

    async def run(self, stop: asyncio.Event, flush_until: list[float]) -> None:
        """Publish until ``stop``; then send what is queued until ``flush_until[0]``."""
        await asyncio.sleep(self._rng.uniform(0, min(self.plan.interval_s, 5.0)))
        next_due = time.monotonic()
        backoff = 0.5
        try:
            while True:
                now = time.monotonic()
                if stop.is_set():
                    if not self.outbox or now > flush_until[0]:
                        break
                elif now >= next_due:
                    self._due()
                    next_due += self.plan.interval_s * self._rng.uniform(0.8, 1.2)
                if self.link is None and (self.outbox or not stop.is_set()):
                    if not await self._connect():
                        await asyncio.sleep(backoff * self._rng.uniform(0.5, 1.5))
                        backoff = min(backoff * 2, 5.0)
                        continue
                    backoff = 0.5
                if self.outbox and self.link is not None:
                    msg = self.outbox[0]
                    resend = msg.sent_before
                    try:
                        self.tally.messages_sent += 1
                        self.tally.resends += resend
                        await self.link.publish(msg)
                    except _LINK_ERRORS:
                        self._drop()
                        continue
                    self.outbox.popleft()
                    self.tally.ack(self.device, msg.readings)
                    continue
                wait = max(0.0, next_due - time.monotonic())
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), wait)
        finally:
            self.tally.given_up += sum(len(m.readings) for m in self.outbox)
            self._drop()


async def poisoner(
    password: str, port: int, root: str, plan: Plan, limit: int, tally: Tally, stop: asyncio.Event
) -> None:
    """A poison message every ``plan.poison_every_s`` from the attacker logger's credentials."""
    started, n = time.monotonic(), 0
    while True:
        due = started + (n + 0.5) * plan.poison_every_s
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), max(0.0, due - time.monotonic()))
        if stop.is_set() or not plan.poisons:
            return
        name, build = POISONS[plan.poisons[n % len(plan.poisons)]]
        kind, payload = build(ATTACKER, datetime.now(UTC), limit)
        topic = (status_topic if kind == "status" else telemetry_topic)(root, ATTACKER)
        n += 1
        tally.poison_sent[name] += 1
        msg = Message(topic.encode(), payload, ())
        for _ in range(3):  # the broker may be down: a few tries, then the next one is due
            try:
                link = await Link.open(port, ATTACKER, password, f"{ATTACKER}:{n}")
                try:
                    await link.publish(msg, wait_s=10)
                finally:
                    link.close()
                tally.poison_acked += 1
                break
            except _LINK_ERRORS:
                await asyncio.sleep(2)


# --- the faults ----------------------------------------------------------------------------


@dataclass
class Event:
    at: float
    what: str
    detail: str


class IngesterStage:
    """``coldchain ingest`` as a subprocess the soak may SIGKILL; restarted when it dies."""

    def __init__(self, settings: Settings, log: Path, env: dict[str, str]) -> None:
        self.settings, self.log, self.env = settings, log, env
        self.proc: Any = None
        self.kills = 0
        self.crashes: Counter[int] = Counter()  # exit codes of exits the soak did not cause

    def start(self) -> None:
        self.proc = ingester_process(self.settings, self.log, **self.env)

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()
        self.kills += 1
        self.start()

    def check(self) -> int | None:
        """The exit code if it died on its own (then it is restarted), else None."""
        code = self.proc.poll()
        if code is None:
            return None
        self.crashes[code] += 1
        self.start()
        return int(code)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(40)
        except Exception:
            self.proc.kill()
            self.proc.wait()


def _gone(pid: int) -> bool:
    """Whether a process has exited (a zombie counts as exited)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def kill_postgres(pg: PostgresCluster) -> str:
    """SIGKILL the postmaster (its children then exit by themselves), then start it again."""
    pid = postmaster_pid(pg.data_dir)
    children = children_of(pid)
    started = time.monotonic()
    os.kill(pid, signal.SIGKILL)
    deadline = started + 30
    while time.monotonic() < deadline:
        for p in (pid, *children):
            _reap(p)
        if all(_gone(p) for p in (pid, *children)):
            break
        time.sleep(0.1)
    else:  # backends of this cluster that did not notice: the restart needs their memory
        for p in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(p, signal.SIGKILL)
            _reap(p)
    down = time.monotonic() - started
    pg.start(timeout=120)
    return f"postmaster {pid} and {len(children)} children gone in {down:.1f} s; back in {time.monotonic() - started:.1f} s"


def kill_broker(broker: MosquittoBroker) -> str:
    """SIGKILL Mosquitto, then start it on the same port with the same persistence folder."""
    started = time.monotonic()
    broker.kill()
    for attempt in range(10):
        try:
            broker.start()
            break
        except Exception:
            if attempt == 9:
                raise
            time.sleep(1)
    return f"back in {time.monotonic() - started:.1f} s"


async def chaos(
    plan: Plan,
    stack: Stack,
    ingester: IngesterStage,
    events: list[Event],
    started: float,
    stop: asyncio.Event,
) -> None:
    """Run :func:`schedule`'s faults in order; restart an ingester that dies on its own."""
    pending = deque(schedule(plan))
    while not stop.is_set():
        t = time.monotonic() - started
        code = ingester.check()
        if code is not None:
            events.append(Event(t, "ingester exited", f"code {code}; restarted"))
        if pending and t >= pending[0][0]:
            _, what = pending.popleft()
            if what == "ingester":
                ingester.kill()
                events.append(Event(t, "ingester SIGKILL", f"#{ingester.kills}; restarted"))
            elif what == "postgres":
                detail = await asyncio.to_thread(kill_postgres, stack.pg)
                events.append(Event(t, "PostgreSQL SIGKILL", detail))
            elif what == "broker":
                detail = await asyncio.to_thread(kill_broker, stack.broker)
                events.append(Event(t, "Mosquitto SIGKILL", detail))
            continue
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.5)


# --- the API clients, in their own process --------------------------------------------------

ROUTES = (
    ("/healthz", 1),
    ("/api/v1/auth/me", 1),
    ("/api/v1/devices", 1),
    ("/api/v1/devices/{device}", 2),
    ("/api/v1/devices/{device}/readings", 3),
    ("/api/v1/shipments", 1),
    ("/api/v1/alerts", 1),
    ("/api/v1/products", 1),
)


@dataclass
class ApiResult:
    latencies_ms: dict[str, list[float]] = field(default_factory=dict)
    statuses: Counter[str] = field(default_factory=Counter)  # "2xx", "5xx", ...
    by_status: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)  # connection errors, timeouts
    #: When each connection error happened (time.monotonic(), one clock for all processes on
    #: Linux, so comparable with the faults' times); the first 1,000.
    error_at: list[float] = field(default_factory=list)
    login: str = ""

    @classmethod
    def from_plain(cls, values: dict[str, Any]) -> ApiResult:
        """From the worker's dict of fields (Counters arrive as plain dicts)."""
        res = cls(
            latencies_ms=values["latencies_ms"], login=values["login"], error_at=values["error_at"]
        )
        res.statuses.update(values["statuses"])
        res.by_status.update(values["by_status"])
        res.errors.update(values["errors"])
        return res


async def _api_load(
    url: str, password: str, api_key: str, loggers: list[str], clients: int, seconds: float,
    think_ms: float,
) -> ApiResult:  # fmt: skip
    res = ApiResult()
    deadline = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30.0) as http:
        token = None
        while token is None and time.monotonic() < deadline:
            try:
                r = await http.post(
                    "/api/v1/auth/login", json={"username": USERNAME, "password": password}
                )
                if r.status_code == 200:
                    token = r.json()["access_token"]
                else:
                    res.login = f"{r.status_code} {r.text[:100]}"
                    await asyncio.sleep(1)
            except httpx.HTTPError as exc:
                res.login = type(exc).__name__
                await asyncio.sleep(1)
        bearer = {"Authorization": f"Bearer {token}"}
        keyed = {"X-API-Key": api_key}
        paths = [p for p, w in ROUTES for _ in range(w)]

        async def client(i: int) -> None:
            rng = random.Random(i)
            headers = bearer if i % 2 == 0 and token else keyed
            while time.monotonic() < deadline:
                route = rng.choice(paths)
                path = route.format(device=rng.choice(loggers))
                t0 = time.perf_counter()
                try:
                    r = await http.get(path, headers=headers)
                except httpx.HTTPError as exc:
                    res.errors[type(exc).__name__] += 1
                    if len(res.error_at) < 1000:
                        res.error_at.append(time.monotonic())
                    await asyncio.sleep(0.2)
                    continue
                res.latencies_ms.setdefault(route, []).append((time.perf_counter() - t0) * 1000)
                res.statuses[f"{r.status_code // 100}xx"] += 1
                res.by_status[r.status_code] += 1
                if think_ms:
                    await asyncio.sleep(rng.uniform(0, 2 * think_ms) / 1000)

        await asyncio.gather(*(client(i) for i in range(clients)))
    return res


def api_worker(
    url: str, password: str, api_key: str, loggers: list[str], clients: int, seconds: float,
    think_ms: float, out: Any,
) -> None:  # fmt: skip
    """The API clients' process: runs until ``seconds`` have passed, then reports on ``out``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops us
    res = asyncio.run(_api_load(url, password, api_key, loggers, clients, seconds, think_ms))
    # Plain values: the parent cannot unpickle a class of this process's ``__mp_main__``.
    out.put({f.name: getattr(res, f.name) for f in dataclasses.fields(res)})


# --- the run -------------------------------------------------------------------------------


class Overrun(Exception):
    """The soak went past its time budget."""


def _become_subreaper() -> None:
    """Adopt orphaned descendants (the postmaster, once ``pg_ctl`` has exited), so that after
    its SIGKILL we reap it: an unreaped zombie still holds its PID, and PostgreSQL's lock file
    would name a 'live' postmaster."""
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER


def provision(stack: Stack, s: Settings, plan: Plan) -> tuple[dict[str, str], str, str]:
    """Register the loggers, issue their MQTT credentials, restart the broker with the password
    file and ACL; a viewer and an API key for the API clients. Returns (logger passwords,
    the ingester's password, the API key); the viewer's password is the API key's twin."""
    fleet = [f"SOAK-{i:05d}" for i in range(plan.loggers)]
    seed_devices(s.db.dsn, [*fleet, ATTACKER], interval_s=max(1, round(plan.interval_s)))
    with psycopg.connect(s.db.dsn, autocommit=True, row_factory=dict_row) as conn:
        result = devices.provision(
            conn,
            topic_root=s.mqtt.topic_root,
            out_dir=stack.root / "mqtt-auth",
            services=[devices.INGEST_ACCOUNT],
            ctx=CTX,
        )
        api_key, _ = accounts.create_api_key(
            conn, name="soak", role="viewer", expires_at=None, ctx=CTX
        )
    stack.broker.stop()
    stack.broker.password_file, stack.broker.acl_file = result.password_file, result.acl_file
    stack.broker.subscribers = (devices.INGEST_ACCOUNT.username,)  # as `coldchain up` does
    # As ``coldchain up`` sets it: a little over the ingester's payload limit reaches it.
    stack.broker.max_packet_size = 4 * s.ingest.max_payload_bytes + 1024
    stack.broker.start()
    return result.issued, result.services[devices.INGEST_ACCOUNT.username], api_key


async def attack(
    plan: Plan,
    stack: Stack,
    s: Settings,
    ingester: IngesterStage,
    passwords: dict[str, str],
    events: list[Event],
) -> Tally:
    """The fleet, the poison and the faults, for ``plan.seconds``; then the flush window."""
    started = time.monotonic()
    tally = Tally(started)
    stop = asyncio.Event()
    flush_until = [math.inf]
    fleet = [
        Logger(d, p, stack.broker.port, s.mqtt.topic_root, plan, tally)
        for d, p in sorted(passwords.items())
        if d != ATTACKER
    ]
    tasks = [asyncio.create_task(lg.run(stop, flush_until), name=lg.device) for lg in fleet]
    side = [
        asyncio.create_task(
            poisoner(
                passwords[ATTACKER],
                stack.broker.port,
                s.mqtt.topic_root,
                plan,
                s.ingest.max_payload_bytes,
                tally,
                stop,
            ),
            name="poisoner",
        ),
        asyncio.create_task(chaos(plan, stack, ingester, events, started, stop), name="chaos"),
    ]
    next_report = started
    try:
        while (t := time.monotonic() - started) < plan.seconds:
            if time.monotonic() >= next_report:
                queued = sum(len(lg.outbox) for lg in fleet)
                connected = sum(lg.link is not None for lg in fleet)
                try:
                    stored: int | str = await asyncio.to_thread(count_rows, s.db.dsn)
                except psycopg.Error:
                    stored = "database down"
                print(
                    f"  t={t:5.0f}s  acknowledged {len(tally.acked):>7,}  rows {stored:>7}  "
                    f"connected {connected:>4}  queued {queued:>5}  "
                    f"ingester kills {ingester.kills}  poison {sum(tally.poison_sent.values())}",
                    flush=True,
                )
                next_report += 15
            await asyncio.sleep(0.5)
    finally:
        stop.set()
        flush_until[0] = time.monotonic() + FLUSH_S
        # The fault in progress finishes (a half-restarted database is no end state).
        await asyncio.wait(side, timeout=180)
        await asyncio.wait(tasks, timeout=FLUSH_S + ACK_TIMEOUT_S + 5)
        for task in (*tasks, *side):
            task.cancel()
        outcomes = await asyncio.gather(*tasks, *side, return_exceptions=True)
        # A failure of the soak itself is reported, never mistaken for a result.
        t = time.monotonic() - started
        for task, outcome in zip((*tasks, *side), outcomes, strict=True):
            if isinstance(outcome, Exception):
                tally.failures.append(f"{task.get_name()}: {type(outcome).__name__}: {outcome}")
                if task in side:
                    events.append(Event(t, "soak task failed", tally.failures[-1]))
    return tally


@dataclass
class Count:
    acknowledged: int
    stored: int
    changed: int
    duplicated: int
    lost_examples: list[tuple[str, datetime, float]]
    lost_by_window: list[tuple[int, int]]  # (window start s, lost keys acknowledged in it)
    unacked_stored: int
    dead_letters: int
    dead_letter_bytes: int
    dead_letter_reasons: list[tuple[str, int]]
    attacker_rows: int


def _stored_acked(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute(
        "SELECT count(*) FROM soak_acked a JOIN readings r USING (device_id, ts)"
    ).fetchone()
    return int(row[0]) if row else 0


def drain_and_count(
    dsn: str, tally: Tally, timeout: float, ingester: IngesterStage, events: list[Event]
) -> Count:
    """Wait (bounded) until every acknowledged key is stored or nothing moves for
    :data:`STALL_S`, keeping the ingester running; then count."""
    acked = tally.acked
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "CREATE TEMP TABLE soak_acked (device_id text, ts timestamptz, temp_c float8,"
            " acked_s float8, PRIMARY KEY (device_id, ts))"
        )
        with (
            conn.cursor() as cur,
            cur.copy(
                "COPY soak_acked (device_id, ts, temp_c, acked_s) FROM STDIN (FORMAT BINARY)"
            ) as copy,
        ):
            copy.set_types(["text", "timestamptz", "float8", "float8"])
            for (device, ts), (temp, t) in acked.items():
                copy.write_row((device, ts, temp, t))
        started = time.monotonic()
        last, last_change = -1, started
        while True:
            stored = _stored_acked(conn)
            if stored != last:
                last, last_change = stored, time.monotonic()
            if stored >= len(acked):
                why = "everything acknowledged is stored"
                break
            if time.monotonic() > started + timeout:
                why = f"--drain-timeout ({timeout:.0f} s) reached"
                break
            if time.monotonic() - last_change > STALL_S:
                why = f"no new row for {STALL_S:.0f} s"
                break
            if (code := ingester.check()) is not None:
                t = time.monotonic() - tally.started
                events.append(Event(t, "ingester exited", f"code {code} while draining; restarted"))
            time.sleep(2)
        print(
            f"  drain over after {time.monotonic() - started:.0f} s ({why}): {stored:,} of "
            f"{len(acked):,} acknowledged readings stored",
            flush=True,
        )

        def one(query: str) -> int:
            row = conn.execute(query).fetchone()
            return int(row[0]) if row and row[0] is not None else 0

        lost_q = (
            "FROM soak_acked a WHERE NOT EXISTS"
            " (SELECT 1 FROM readings r WHERE r.device_id = a.device_id AND r.ts = a.ts)"
        )
        examples = [
            (str(d), ts, float(t))
            for d, ts, t in conn.execute(
                f"SELECT device_id, ts, acked_s {lost_q} ORDER BY acked_s LIMIT 5"
            ).fetchall()
        ]
        windows = [
            (int(w), int(n))
            for w, n in conn.execute(
                f"SELECT floor(acked_s / 30) * 30, count(*) {lost_q} GROUP BY 1 ORDER BY 1"
            ).fetchall()
        ]
        reasons = [
            (str(r), int(n))
            for r, n in conn.execute(
                "SELECT left(reason, 70), count(*) FROM dead_letters GROUP BY 1"
                " ORDER BY 2 DESC LIMIT 6"
            ).fetchall()
        ]
        return Count(
            acknowledged=len(acked),
            stored=stored,
            changed=one(
                "SELECT count(*) FROM soak_acked a JOIN readings r USING (device_id, ts)"
                " WHERE r.temp_c IS DISTINCT FROM a.temp_c"
            ),
            duplicated=one(
                "SELECT count(*) FROM (SELECT device_id, ts FROM readings"
                " GROUP BY device_id, ts HAVING count(*) > 1) AS d"
            ),
            lost_examples=examples,
            lost_by_window=windows,
            unacked_stored=one(
                "SELECT count(*) FROM readings r WHERE r.device_id <> "
                f"'{ATTACKER}' AND NOT EXISTS (SELECT 1 FROM soak_acked a"
                " WHERE a.device_id = r.device_id AND a.ts = r.ts)"
            ),
            dead_letters=one("SELECT count(*) FROM dead_letters"),
            dead_letter_bytes=one("SELECT sum(octet_length(payload)) FROM dead_letters"),
            dead_letter_reasons=reasons,
            attacker_rows=one(f"SELECT count(*) FROM readings WHERE device_id = '{ATTACKER}'"),
        )


_VARYING = re.compile(r"\b[0-9a-f]{12}\b|SOAK-\d{5}|\b\d+(\.\d+)?\b")


def _log_errors(log: Path) -> tuple[int, list[tuple[str, int]]]:
    """A service log's ERROR/CRITICAL lines and the exceptions its tracebacks end with: how
    many, and the commonest (numbers, request ids and logger ids blanked so that alike lines
    count together)."""
    if not log.exists():
        return 0, []
    found: Counter[str] = Counter()
    in_traceback = False
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("Traceback"):
            in_traceback = True
        elif in_traceback:
            if line and not line.startswith((" ", "\t", "During handling", "The above")):
                found["raised " + _VARYING.sub("…", line)[:100]] += 1
                in_traceback = False
        elif " ERROR " in line or " CRITICAL " in line:
            found[_VARYING.sub("…", line.split(": ", 1)[-1])[:100]] += 1
    return sum(found.values()), found.most_common(4)


def report(
    plan: Plan,
    tally: Tally,
    count: Count,
    api: ApiResult | None,
    events: list[Event],
    ingester: IngesterStage,
    logs: dict[str, Path],
) -> bool:
    """Print the final table; True when nothing acknowledged was lost, changed or duplicated."""
    lost = count.acknowledged - count.stored
    ok = lost == 0 and count.duplicated == 0 and count.changed == 0 and not tally.failures
    line = "-" * 78
    print(
        f"\n{line}\nSOAK RESULT  ({'PASS' if ok else 'FAIL'}: lost, changed, duplicated must be 0)"
    )
    print(line)
    print(
        f"plan: {plan.seconds:.0f} s, {plan.loggers} loggers (own credentials each, QoS 1, every "
        f"{plan.interval_s:g} s, a {BURST_READINGS}-reading upload every ~{plan.burst_every_s:g} s),"
        f" {plan.kills} ingester kills, PostgreSQL kill {'yes' if plan.pg_kill else 'no'}, broker "
        f"kill {'yes' if plan.broker_kill else 'no'}, poison ({','.join(plan.poisons) or 'none'})"
        f" every {plan.poison_every_s:g} s, "
        f"{plan.api_clients} API clients"
    )
    rows = [
        ("acknowledged (PUBACK) readings", f"{count.acknowledged:,}"),
        ("stored (of those)", f"{count.stored:,}"),
        ("LOST (acknowledged, not stored when the drain ended)", f"{lost:,}"),
        ("CHANGED (stored with another temp_c)", f"{count.changed:,}"),
        ("DUPLICATED (device, ts) keys in readings", f"{count.duplicated:,}"),
        ("stored but never acknowledged (re-send raced a kill)", f"{count.unacked_stored:,}"),
        ("readings never acknowledged by the end", f"{tally.given_up:,}"),
        (
            "messages published / acknowledged / re-sent",
            f"{tally.messages_sent:,} / {tally.messages_acked:,} / {tally.resends:,}",
        ),
        (
            "logger connects / refused or failed",
            f"{tally.connects:,} / {sum(tally.refused.values()):,}",
        ),
        (
            "poison sent / acknowledged",
            f"{sum(tally.poison_sent.values())} / {tally.poison_acked}",
        ),
        (
            "dead letters (rows / payload bytes)",
            f"{count.dead_letters:,} / {count.dead_letter_bytes:,}",
        ),
        ("poison stored as readings (should be 0)", f"{count.attacker_rows:,}"),
        (
            "ingester SIGKILLs / exits on its own",
            f"{ingester.kills} / {sum(ingester.crashes.values())} {dict(ingester.crashes) or ''}",
        ),
    ]
    if api is not None:
        every = sorted(x for v in api.latencies_ms.values() for x in v)
        fivexx = sum(n for code, n in api.by_status.items() if code >= 500)
        conn_errors = sum(api.errors.values())
        rows += [
            ("API requests answered", f"{len(every):,}  {dict(sorted(api.statuses.items()))}"),
            (
                "API latency p50 / p95 / p99",
                f"{percentile(every, 0.5):,.0f} / {percentile(every, 0.95):,.0f} / "
                f"{percentile(every, 0.99):,.0f} ms",
            ),
            (
                "API errors: 5xx / connection errors",
                f"{fivexx:,} {dict(c for c in api.by_status.items() if c[0] >= 500) or ''} / "
                f"{conn_errors:,} {dict(api.errors) or ''}",
            ),
        ]
        if api.login:
            rows.append(("API login trouble (last)", api.login))
    else:
        rows.append(("API", "no result from the API clients' process"))
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k:<{width}}  {v}")
    for failure in tally.failures[:5]:
        print(f"SOAK TASK FAILED (a bug of the soak, not a result): {failure}")
    if api is not None and api.latencies_ms:
        print("\nAPI by route             n     p50     p95     p99 (ms)")
        for route, _ in ROUTES:
            lat = sorted(api.latencies_ms.get(route, []))
            print(
                f"  {route:<34}{len(lat):>7,}{percentile(lat, 0.5):>8,.0f}"
                f"{percentile(lat, 0.95):>8,.0f}{percentile(lat, 0.99):>8,.0f}"
            )
    if lost:
        print("\nlost, by when they were acknowledged (30 s windows from the start):")
        print("  " + ", ".join(f"{w}s: {n:,}" for w, n in count.lost_by_window))
        print("first lost readings (device, ts, acknowledged at):")
        for d, ts, t in count.lost_examples:
            print(f"  {d}  {_iso_ms(ts)}  t={t:.1f}s")
    sent = ", ".join(f"{k}: {n}" for k, n in tally.poison_sent.items())
    print(f"\npoison sent: {sent or 'none'}")
    if count.dead_letter_reasons:
        print("dead-letter reasons (commonest):")
        for reason, times in count.dead_letter_reasons:
            print(f"  {times:>7,}  {reason}")
    print("\nfaults (t from the start):")
    for e in events:
        if e.what != "ingester SIGKILL":
            print(f"  t={e.at:6.1f}s  {e.what}: {e.detail}")
    kills = [f"{e.at:.0f}" for e in events if e.what == "ingester SIGKILL"]
    print(f"  ingester SIGKILLs at t= {', '.join(kills) or 'none'} s")
    if api is not None and api.error_at:
        at = Counter(f"{t - tally.started:.0f}" for t in api.error_at)
        print("API connection errors at t= " + ", ".join(f"{t} s ×{n}" for t, n in at.items()))
    for name, log in logs.items():
        n, common = _log_errors(log)
        print(
            f"{name} log: {n:,} ERROR lines and raised exceptions"
            + (", commonest:" if common else "")
        )
        for text, times in common:
            print(f"  {times:>6,}  {text}")
    print(line)
    return ok


def run(plan: Plan, keep_logs: Path | None) -> int:
    """Set up, attack, drain, count, report; 0 when nothing acknowledged was lost, else 1.
    Every process it started is stopped and the temporary folder removed, whatever happens."""
    _become_subreaper()
    events: list[Event] = []
    ingester: IngesterStage | None = None
    api_proc: Any = None
    logs: dict[str, Path] = {}
    print(f"setting up the stack ({plan.loggers} loggers)…", flush=True)
    with local_stack() as stack:
        try:
            s = stack.new_database()
            passwords, ingest_password, api_key = provision(stack, s, plan)
            viewer_password = secrets.token_urlsafe(18)
            add_viewer(s.db.dsn, viewer_password)
            logdir = stack.root / "logs"
            logdir.mkdir()
            logs = {
                "ingester": logdir / "ingest.log",
                "web": logdir / "web.log",
                "mosquitto": stack.broker.log_file,
                "postgresql": stack.pg.log_file,
            }
            ingester = IngesterStage(
                s,
                logs["ingester"],
                {
                    "COLDCHAIN_MQTT__USERNAME": devices.INGEST_ACCOUNT.username,
                    "COLDCHAIN_MQTT__PASSWORD": ingest_password,
                },
            )
            ingester.start()
            wait_for_log(logs["ingester"], "ingester subscribed", 60)
            with web_process(s, logs["web"]) as url:
                ctx = multiprocessing.get_context("spawn")
                results = ctx.Queue()
                fleet = sorted(d for d in passwords if d != ATTACKER)
                api_proc = ctx.Process(
                    target=api_worker,
                    args=(
                        url,
                        viewer_password,
                        api_key,
                        fleet,
                        plan.api_clients,
                        plan.seconds,
                        plan.api_think_ms,
                        results,
                    ),
                    name="soak-api-clients",
                    daemon=True,
                )
                if plan.api_clients:
                    api_proc.start()
                print(
                    f"attack for {plan.seconds:.0f} s: broker :{stack.broker.port}, "
                    f"PostgreSQL :{stack.pg.port}, web {url}",
                    flush=True,
                )
                tally = asyncio.run(attack(plan, stack, s, ingester, passwords, events))
                api: ApiResult | None = None
                if plan.api_clients:
                    with contextlib.suppress(Exception):
                        api = ApiResult.from_plain(results.get(timeout=90))
                    api_proc.join(10)
                print(
                    f"attack over; waiting up to {plan.drain_timeout_s:.0f} s for the ingester",
                    flush=True,
                )
                count = drain_and_count(s.db.dsn, tally, plan.drain_timeout_s, ingester, events)
                ok = report(plan, tally, count, api, events, ingester, logs)
            return 0 if ok else 1
        finally:
            if api_proc is not None and api_proc.is_alive():
                api_proc.kill()
                api_proc.join(5)
            if ingester is not None:
                ingester.stop()
            if keep_logs is not None and logs:
                keep_logs.mkdir(parents=True, exist_ok=True)
                for name, log in logs.items():
                    with contextlib.suppress(OSError):
                        shutil.copyfile(log, keep_logs / f"{name}.log")
                print(f"logs kept in {keep_logs}")


@contextlib.contextmanager
def time_budget(seconds: float) -> Iterator[None]:
    """Raise :class:`Overrun` in the main thread after ``seconds``; SIGTERM stops us cleanly."""

    def overrun(signum: int, _frame: object) -> None:
        raise Overrun(f"the soak overran its budget of {seconds:.0f} s")

    def terminate(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGALRM, overrun), signal.signal(signal.SIGTERM, terminate)
    signal.alarm(math.ceil(seconds))
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous[0])
        signal.signal(signal.SIGTERM, previous[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="attack duration")
    parser.add_argument("--loggers", type=int, default=500, help="registered loggers publishing")
    parser.add_argument("--kills", type=int, default=40, help="SIGKILLs of the ingester")
    parser.add_argument("--api-clients", type=int, default=50, help="concurrent API clients")
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between readings")
    parser.add_argument(
        "--burst-every", type=float, default=300.0,
        help=f"mean seconds between a logger's {BURST_READINGS}-reading uploads",
    )  # fmt: skip
    parser.add_argument("--poison-every", type=float, default=30.0, help="seconds")
    parser.add_argument(
        "--poisons", default=",".join(POISONS),
        help=f"which poison messages, in turn: some of {','.join(POISONS)}, or none",
    )  # fmt: skip
    parser.add_argument(
        "--api-think-ms", type=float, default=0.0,
        help="mean pause between a client's requests (0: closed loop, 50 requests always open)",
    )  # fmt: skip
    parser.add_argument("--drain-timeout", type=float, default=180.0, help="seconds, at most")
    parser.add_argument("--no-pg-kill", action="store_true", help="leave PostgreSQL alone")
    parser.add_argument("--no-broker-kill", action="store_true", help="leave the broker alone")
    parser.add_argument("--logs", type=Path, default=None, help="keep the service logs here")
    parser.add_argument(
        "--quick", action="store_true",
        help="75 s of attack, 5 ingester kills, poison every 15 s, 60 s drain (explicit options win)",
    )  # fmt: skip
    args = parser.parse_args()
    given = {
        a.lstrip("-").split("=")[0].replace("-", "_") for a in sys.argv[1:] if a.startswith("--")
    }

    poisons = tuple(p for p in args.poisons.split(",") if p and p != "none")
    if unknown := set(poisons) - set(POISONS):
        parser.error(
            f"--poisons: unknown {', '.join(sorted(unknown))} (known: {', '.join(POISONS)})"
        )
    if args.loggers < 1 or args.kills < 0 or args.minutes <= 0 or args.api_clients < 0:
        parser.error("--loggers >= 1, --kills >= 0, --minutes > 0 and --api-clients >= 0")

    def pick(name: str, quick: float) -> float:
        value = float(getattr(args, name))
        return quick if args.quick and name not in given else value

    plan = Plan(
        seconds=pick("minutes", 1.25) * 60,
        loggers=args.loggers,
        kills=int(pick("kills", 5)),
        api_clients=args.api_clients,
        interval_s=args.interval,
        burst_every_s=args.burst_every,
        poison_every_s=pick("poison_every", 15.0),
        drain_timeout_s=pick("drain_timeout", 60.0),
        api_think_ms=args.api_think_ms,
        pg_kill=not args.no_pg_kill,
        broker_kill=not args.no_broker_kill,
        poisons=poisons,
    )
    # set-up, the attack, 180 s for a fault in progress, the flush, the drain, the report
    budget = 300 + plan.seconds + 180 + FLUSH_S + ACK_TIMEOUT_S + plan.drain_timeout_s + 120
    try:
        with time_budget(budget):
            code = run(plan, args.logs)
    except Overrun as exc:
        print(f"error: {exc}; the stack was stopped and removed", file=sys.stderr)
        code = 2
    except KeyboardInterrupt:
        print("interrupted; the stack was stopped and removed", file=sys.stderr)
        code = 130
    except Exception as exc:
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        code = 2
    sys.exit(code)


if __name__ == "__main__":
    main()
