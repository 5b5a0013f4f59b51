"""The engine's heartbeat: the pure verdict, and a real ``coldchain rules`` process pinging a
local dead-man's switch (every period; ``/fail`` when the database is gone; silence once killed)."""

from __future__ import annotations

import asyncio
import itertools
import signal
import statistics
import time
from dataclasses import dataclass, replace
from pathlib import Path

import psycopg
import pytest

from alerts.heartbeat import Bounds, EngineSigns, fail_url, judge
from coldchain.settings import AlertsSettings, Settings
from tests.fixtures.engines import rules_process, wait_until
from tests.fixtures.services import PostgresCluster

BOUNDS = Bounds(round_age_s=20.0, claims_age_s=10.0, max_lag_s=300.0)
WELL = EngineSigns(
    now=1000.0,
    started_at=900.0,
    progress_at=995.0,
    claims_at=999.0,
    held=16,
    partitions=16,
    lag_s=0.5,
)


@pytest.mark.parametrize(
    ("change", "state", "reason"),
    [
        ({}, "ok", None),
        ({"held": 0}, "ok", None),  # a standby engine (more engines than partitions) is well
        ({"lag_s": 301.0}, "fail", "engine lag 301 s is over the bound of 300 s"),
        ({"lag_s": None, "db_error": "OperationalError: x"}, "fail", "database unavailable"),
        ({"progress_at": 979.0}, "fail", "no evaluation round completed for 21 s"),
        ({"claims_at": 989.0}, "fail", "partition claims not renewed for 11 s"),
        ({"progress_at": None}, "fail", "no evaluation round completed since the start"),
        ({"started_at": 995.0, "progress_at": None, "claims_at": None}, "starting", None),
        ({"started_at": 995.0, "lag_s": None}, "fail", "database unavailable"),
    ],
)
def test_the_verdict(change: dict[str, object], state: str, reason: str | None) -> None:
    verdict = judge(replace(WELL, **change), BOUNDS)  # type: ignore[arg-type]
    assert verdict.state == state
    if reason is None:
        assert verdict.reasons == ()
    else:
        assert any(r.startswith(reason) for r in verdict.reasons), verdict.reasons


def test_the_bounds_follow_the_settings() -> None:
    a = AlertsSettings(poll_interval_s=2, heartbeat_period_s=30, engine_timeout_s=7)
    assert Bounds.of(a) == Bounds(round_age_s=34.0, claims_age_s=7.0, max_lag_s=300.0)


def test_the_fail_url_keeps_the_query() -> None:
    assert fail_url("https://hc.example/ping/abc-123") == "https://hc.example/ping/abc-123/fail"
    assert fail_url("https://hc.example/p/k/?rid=7") == "https://hc.example/p/k/fail?rid=7"


@dataclass(frozen=True)
class Ping:
    at: float  # time.monotonic() when it arrived
    method: str
    path: str
    body: str


class Switch:
    """A local dead-man's switch: records every request (any 2xx-worthy path answers 200)."""

    def __init__(self) -> None:
        self.pings: list[Ping] = []
        self._server: asyncio.Server | None = None
        self.url = ""

    async def __aenter__(self) -> Switch:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}/ping/0f1e2d3c-secret"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    def ok(self) -> list[Ping]:
        return [p for p in self.pings if p.path == "/ping/0f1e2d3c-secret"]

    def failed(self) -> list[Ping]:
        return [p for p in self.pings if p.path == "/ping/0f1e2d3c-secret/fail"]

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            method, path, _ = (await reader.readline()).decode().split(" ", 2)
            headers: dict[str, str] = {}
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode().partition(":")
                headers[name.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            self.pings.append(Ping(time.monotonic(), method, path, body.decode()))
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nOK")
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            pass
        finally:
            writer.close()


PERIOD_S = 0.4


@pytest.mark.integration
async def test_pings_every_period_fail_without_the_database_and_stop_when_killed(
    settings: Settings, db_name: str, pg_cluster: PostgresCluster, tmp_path: Path
) -> None:
    log = tmp_path / "rules.log"

    def outage(on: bool) -> None:
        with psycopg.connect(pg_cluster.superuser_dsn(), autocommit=True) as conn:
            conn.execute(f'ALTER DATABASE "{db_name}" WITH ALLOW_CONNECTIONS {not on}')
            if on:
                conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                    (db_name,),
                )

    async with Switch() as switch:
        env = {
            "COLDCHAIN_ALERTS__HEARTBEAT_URL": switch.url,
            "COLDCHAIN_ALERTS__HEARTBEAT_PERIOD_S": str(PERIOD_S),
            "COLDCHAIN_ALERTS__POLL_INTERVAL_S": "0.2",
        }
        proc = rules_process(settings, log, env)
        try:
            # Healthy: one success per period, each saying which engine and its lag.
            await wait_until(lambda: len(switch.ok()) >= 6, 30, log)
            oks = switch.ok()
            gaps = [b.at - a.at for a, b in itertools.pairwise(oks)]
            assert 0.7 * PERIOD_S <= statistics.median(gaps) <= 1.5 * PERIOD_S, gaps
            assert all(p.method == "POST" and p.body.startswith("ok: engine ") for p in oks)
            assert not switch.failed()

            # The database is gone: the engine knows and says so on /fail, with the reason.
            outage(True)
            try:
                await wait_until(lambda: bool(switch.failed()), 15, log)
                assert "database unavailable" in switch.failed()[0].body
            finally:
                outage(False)
            # Back: successes again.
            back_from = switch.failed()[-1].at
            await wait_until(lambda: any(p.at > back_from for p in switch.ok()), 30, log)

            # Killed (no clean shutdown): no ping after it, for well over a period.
            proc.kill()
            proc.wait()
            await asyncio.sleep(0.1)  # a request already on the wire is read
            seen = len(switch.pings)
            await asyncio.sleep(3 * PERIOD_S)
            assert len(switch.pings) == seen
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=30)
    text = log.read_text()
    assert "/ping/0f1e2d3c-secret" not in text and "0f1e2d3c" not in text  # the URL is a secret
    assert "heartbeat every 0.4 s to 127.0.0.1" in text
