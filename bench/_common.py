"""Shared pieces of the benchmarks: a private local stack on free ports, and a fast publisher."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import psycopg

from coldchain.settings import DbSettings, MqttSettings, Settings
from db.migrate import migrate
from launcher.localstack import MosquittoBroker, PostgresCluster, free_port

PASSWORD = "bench"


@dataclass
class Stack:
    pg: PostgresCluster
    broker: MosquittoBroker
    root: Path

    def new_database(self) -> Settings:
        name = f"bench_{secrets.token_hex(3)}"
        self.pg.ensure_database(name, "coldchain", PASSWORD)
        with psycopg.connect(self.pg.superuser_dsn(), autocommit=True) as conn:
            # The migrations grant to this group role; creating a role needs a superuser.
            conn.execute(
                "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'coldchain_app')"
                " THEN CREATE ROLE coldchain_app NOLOGIN; END IF; END $$"
            )
        s = Settings(
            _env_file=None,
            db=DbSettings(port=self.pg.port, name=name, password=PASSWORD),
            mqtt=MqttSettings(port=self.broker.port, topic_root=f"bench/{name}/coldchain/v1"),
        )
        migrate(s.db.dsn)
        return s


@contextlib.contextmanager
def local_stack() -> Iterator[Stack]:
    root = Path(tempfile.mkdtemp(prefix="coldchain-bench-"))
    root.chmod(0o755)
    (root / "pg").mkdir()
    (root / "pg").chmod(0o755)
    pg = PostgresCluster(root / "pg" / "data", free_port())
    broker = MosquittoBroker(root / "mqtt", free_port())
    # `kill` (SIGTERM, as `timeout` sends) unwinds like Ctrl-C, so the database and the broker
    # are stopped and their files removed rather than left running.
    previous = signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        pg.start()
        broker.start()
        yield Stack(pg, broker, root)
    finally:
        broker.stop()
        pg.stop()
        shutil.rmtree(root, ignore_errors=True)
        signal.signal(signal.SIGTERM, previous)


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def seed_devices(dsn: str, devices: Sequence[str], interval_s: int = 60) -> None:
    with (
        psycopg.connect(dsn) as conn,
        conn.cursor() as cur,
        cur.copy("COPY devices (device_id, interval_s) FROM STDIN") as copy,
    ):
        for d in devices:
            copy.write_row((d, interval_s))


def count_rows(dsn: str, table: str = "readings") -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
    return int(row[0]) if row else 0


# --- a publisher and a subscriber that cost (almost) nothing -------------------------------
#
# A Python MQTT client (paho) spends ~40 µs of CPU per QoS 1 message; on this 2-core machine that
# caps any pipeline at a few thousand messages a second and steals the core the broker and the
# ingester need. These two speak MQTT 3.1.1 on a bare socket instead: the publisher encodes every
# packet before the clock starts and then only writes bytes; the subscriber only frames packets
# and answers PUBACKs in bulk. What they measure is the broker and whatever is downstream of it.


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _str16(b: bytes) -> bytes:
    return struct.pack("!H", len(b)) + b


def _packet(header: int, body: bytes) -> bytes:
    return bytes([header]) + _varint(len(body)) + body


def _connect(port: int, client_id: str) -> socket.socket:
    """Open an MQTT 3.1.1 clean session; raise if the broker refuses it."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    # protocol name, level 4 (3.1.1), flags: clean session, keep-alive 600 s
    body = _str16(b"MQTT") + bytes([4, 0x02]) + struct.pack("!H", 600) + _str16(client_id.encode())
    sock.sendall(_packet(0x10, body))
    connack = _recv_exactly(sock, 4)
    if connack[0] != 0x20 or connack[3] != 0:
        raise ConnectionError(f"broker refused the connection: {connack!r}")
    return sock


def _recv_exactly(sock: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("broker closed the connection")
        buf += chunk
    return buf


def encode_publishes(messages: Sequence[tuple[str, bytes]]) -> list[bytes]:
    """QoS 1 PUBLISH packets with packet ids 1..65535, cycling (the window stays below that)."""
    return [
        _packet(0x32, _str16(topic.encode()) + struct.pack("!H", i % 65535 + 1) + payload)
        for i, (topic, payload) in enumerate(messages)
    ]


def publish_all(
    port: int, messages: Sequence[tuple[str, bytes]], *, window: int = 4000, chunk: int = 200
) -> float:
    """Publish at QoS 1 as fast as the broker acknowledges, ``window`` unacknowledged; return
    the seconds from the first byte sent to the last PUBACK received.

    Packets are encoded before the clock starts; a reader thread counts PUBACKs (4 bytes each,
    the only thing a publisher receives) so the writer never waits for one in particular.
    """
    packets = encode_publishes(messages)
    sock = _connect(port, f"bench-pub-{secrets.token_hex(3)}")
    acked = 0
    cond = threading.Condition()

    def count_acks() -> None:
        nonlocal acked
        received = 0
        while True:
            data = sock.recv(1 << 16)
            if not data:
                break
            received += len(data)
            with cond:
                acked = received // 4
                cond.notify()
                if acked >= len(packets):
                    return

    reader = threading.Thread(target=count_acks, name="bench-pub-acks", daemon=True)
    reader.start()
    started = time.perf_counter()
    for i in range(0, len(packets), chunk):
        with cond:
            while i - acked >= window:
                if not cond.wait(30):
                    raise TimeoutError(f"the broker stopped acknowledging at {acked}")
        sock.sendall(b"".join(packets[i : i + chunk]))
    reader.join(300)
    elapsed = time.perf_counter() - started
    if acked < len(packets):
        raise TimeoutError(f"only {acked} of {len(packets)} publishes acknowledged")
    sock.sendall(b"\xe0\x00")  # DISCONNECT
    sock.close()
    return elapsed


class Counter:
    """A QoS 1 subscriber on a bare socket, in its own thread, that counts what it receives."""

    def __init__(self, port: int, topic: str) -> None:
        self.got = 0
        self.first = self.last = 0.0
        self._sock = _connect(port, f"bench-sub-{secrets.token_hex(3)}")
        self._sock.sendall(_packet(0x82, struct.pack("!H", 1) + _str16(topic.encode()) + b"\x01"))
        suback = _recv_exactly(self._sock, 5)
        if suback[0] != 0x90 or suback[4] != 1:
            raise ConnectionError(f"subscription refused: {suback!r}")
        self._thread = threading.Thread(target=self._read, name="bench-sub", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        buf = bytearray()
        while True:
            try:
                data = self._sock.recv(1 << 16)
            except OSError:
                return
            if not data:
                return
            buf += data
            pos, acks = 0, []
            while len(buf) - pos >= 2:
                header, length, shift, p = buf[pos], 0, 0, pos + 1
                while p < len(buf):
                    length |= (buf[p] & 0x7F) << shift
                    shift += 7
                    p += 1
                    if not buf[p - 1] & 0x80:
                        break
                else:
                    break  # the length itself is incomplete
                if p + length > len(buf):
                    break
                if header >> 4 == 3 and header & 0x06:  # PUBLISH, QoS > 0
                    topic_len = buf[p] << 8 | buf[p + 1]
                    mid = buf[p + 2 + topic_len : p + 4 + topic_len]
                    acks.append(b"\x40\x02" + mid)
                pos = p + length
            del buf[:pos]
            if acks:
                if not self.got:
                    self.first = time.perf_counter()
                self.got += len(acks)
                self.last = time.perf_counter()
                self._sock.sendall(b"".join(acks))

    def wait(self, n: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self.got < n:
            if time.monotonic() > deadline:
                raise TimeoutError(f"received {self.got} of {n}")
            time.sleep(0.01)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.sendall(b"\xe0\x00")
            self._sock.shutdown(socket.SHUT_RDWR)
        self._sock.close()
        self._thread.join(5)


def ingester_process(settings: Settings, log: Path, **extra_env: str) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COLDCHAIN_")}
    env.update(
        COLDCHAIN_DB__PORT=str(settings.db.port),
        COLDCHAIN_DB__NAME=settings.db.name,
        COLDCHAIN_DB__PASSWORD=PASSWORD,
        COLDCHAIN_MQTT__PORT=str(settings.mqtt.port),
        COLDCHAIN_MQTT__TOPIC_ROOT=settings.mqtt.topic_root,
        COLDCHAIN_LOG_LEVEL="INFO",
        **extra_env,
    )
    return subprocess.Popen(
        [sys.executable, "-m", "launcher.cli", "ingest"],
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


def cpu_seconds(pid: int) -> float | None:
    """A process's CPU time so far (user + system, from /proc), or None once it has gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    # After the command name: state is field 3 of the full line, utime 14 and stime 15.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def postmaster_pid(data_dir: Path) -> int:
    """The PID of the PostgreSQL cluster running in ``data_dir`` (its ``postmaster.pid``)."""
    return int((data_dir / "postmaster.pid").read_text().split()[0])


def children_of(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (from /proc)."""
    return [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and _ppid(p) == pid]


def _ppid(proc_dir: Path) -> int:
    try:
        return int((proc_dir / "stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):  # gone, or not a process
        return -1


def peak_rss_mb(pid: int) -> float | None:
    """A process's peak resident memory (VmHWM) in MB, or None once it has gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return None


def wait_for_log(log: Path, text: str, timeout: float = 30.0, *, count: int = 1) -> None:
    """Wait until ``text`` is in ``log`` ``count`` times (a restarted process logs again)."""
    deadline = time.monotonic() + timeout
    while log.read_text(errors="replace").count(text) < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{text!r} not in {log}")
        time.sleep(0.05)


def wait_rows(dsn: str, n: int, timeout: float) -> float:
    """Seconds until the readings table holds n rows (polling every 50 ms)."""
    started = time.perf_counter()
    while count_rows(dsn) < n:
        if time.perf_counter() - started > timeout:
            raise TimeoutError(f"only {count_rows(dsn)} of {n} rows after {timeout:.0f} s")
        time.sleep(0.05)
    return time.perf_counter() - started
