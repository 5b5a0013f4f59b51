"""Shared pieces of the benchmarks: a private local stack on free ports, and a fast publisher."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as paho
import psycopg

from coldchain.localstack import MosquittoBroker, PostgresCluster, free_port
from coldchain.settings import DbSettings, MqttSettings, Settings
from db.migrate import migrate

PASSWORD = "bench"


@dataclass
class Stack:
    pg: PostgresCluster
    broker: MosquittoBroker
    root: Path

    def new_database(self) -> Settings:
        name = f"bench_{secrets.token_hex(3)}"
        self.pg.ensure_database(name, "coldchain", PASSWORD)
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
    try:
        pg.start()
        broker.start()
        yield Stack(pg, broker, root)
    finally:
        broker.stop()
        pg.stop()
        shutil.rmtree(root, ignore_errors=True)


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


def publish_all(port: int, messages: Sequence[tuple[str, bytes]], *, window: int = 2000) -> float:
    """Publish at QoS 1 as fast as the broker acknowledges, ``window`` in flight; return seconds.

    paho's own network loop in this thread, no asyncio: the publisher must not be the bottleneck
    of what it measures.
    """
    client = paho.Client(
        paho.CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{secrets.token_hex(3)}"
    )
    client.max_inflight_messages_set(window)
    client.max_queued_messages_set(0)
    acked = 0

    def on_publish(_c: object, _u: object, _mid: int, _rc: object, _p: object) -> None:
        nonlocal acked
        acked += 1

    client.on_publish = on_publish
    client.connect("127.0.0.1", port)
    client.loop_start()
    started = time.perf_counter()
    for sent, (topic, payload) in enumerate(messages):
        # Keep at most `window` unacknowledged: paho scans its queue on every PUBACK, so an
        # unbounded queue would make the publisher, not the broker, what we measure.
        while sent - acked >= window:
            time.sleep(0.0002)
        client.publish(topic, payload, qos=1)
    while acked < len(messages):
        time.sleep(0.001)
    elapsed = time.perf_counter() - started
    client.loop_stop()
    client.disconnect()
    return elapsed


class Counter:
    """A QoS 1 subscriber in its own network thread that counts what it receives."""

    def __init__(self, port: int, topic: str) -> None:
        self.got = 0
        self.first = self.last = 0.0
        self._client = paho.Client(
            paho.CallbackAPIVersion.VERSION2, client_id=f"bench-sub-{secrets.token_hex(3)}"
        )
        self._client.on_message = self._on_message
        self._client.connect("127.0.0.1", port)
        self._client.subscribe(topic, qos=1)
        self._client.loop_start()
        time.sleep(0.3)

    def _on_message(self, _c: object, _u: object, _m: object) -> None:
        if self.got == 0:
            self.first = time.perf_counter()
        self.got += 1
        self.last = time.perf_counter()

    def wait(self, n: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self.got < n:
            if time.monotonic() > deadline:
                raise TimeoutError(f"received {self.got} of {n}")
            time.sleep(0.01)

    def close(self) -> None:
        self._client.loop_stop()
        self._client.disconnect()


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
        [sys.executable, "-m", "coldchain.cli", "ingest"],
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


def wait_for_log(log: Path, text: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while text not in log.read_text(errors="replace"):
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
