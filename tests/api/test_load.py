"""The web process under load and across a database restart (issue 11, points 4 and 7).

Against the real app served by uvicorn on a free port and the real PostgreSQL: 50 concurrent
clients get answers (no 5xx but 503, no dropped connection); a saturated server answers 503
with ``Retry-After``, never 500; and after PostgreSQL restarts under the running app, every
request succeeds (the pool checks a connection before lending it).
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psycopg
import pytest
import uvicorn

from api.app import create_app
from coldchain.settings import DbSettings, Settings, WebSettings
from coldchain.telemetry import Reading
from db.migrate import migrate
from launcher.localstack import PostgresCluster, free_port
from tests.fixtures.auth import Person, add_user, issue_token
from tests.fixtures.services import APP_PASSWORD, APP_USER, OWNER_PASSWORD, OWNER_USER
from tests.fixtures.web import add_device, add_product, add_shipment, assign, ingest

pytestmark = pytest.mark.integration


@contextlib.contextmanager
def serve(settings: Settings) -> Iterator[str]:
    """The real app (API + dashboard) under uvicorn on a free port; yields its base URL."""
    port = free_port()
    live = settings.model_copy(update={"web": settings.web.model_copy(update={"port": port})})
    server = uvicorn.Server(
        uvicorn.Config(create_app(live), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive(), "the web app did not start: see the log above"
        assert time.monotonic() < deadline, f"the web app did not listen on {port} within 20 s"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)


def _shipment(dsn: str) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    with psycopg.connect(dsn) as conn:
        gtin = add_product(conn)
        add_device(conn, "LOG-1")
        shipment = add_shipment(conn, "SHP-1", product=gtin)
        assign(conn, "LOG-1", shipment, now - timedelta(hours=2))
    ingest(dsn, [Reading("LOG-1", now - timedelta(minutes=m), 5.0) for m in range(1, 90)])


PATHS = ["/api/v1/shipments", "/api/v1/shipments/SHP-1", "/api/v1/shipments/SHP-1/readings"]


async def _clients(url: str, headers: dict[str, str], n: int, seconds: float) -> Counter[str]:
    codes: Counter[str] = Counter()
    until = time.monotonic() + seconds

    async def one(i: int) -> None:
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as client:
            while time.monotonic() < until:
                i += 1
                try:
                    response = await client.get(PATHS[i % len(PATHS)])
                except httpx.HTTPError as exc:
                    codes[type(exc).__name__] += 1
                else:
                    codes[str(response.status_code)] += 1
                    if response.status_code == 503:
                        assert int(response.headers["Retry-After"]) >= 1

    await asyncio.gather(*(one(i) for i in range(n)))
    return codes


def test_fifty_concurrent_clients_get_answers_not_server_errors(
    settings: Settings, db_dsn: str, people: dict[str, Person]
) -> None:
    # Before the fix: p50 10 s (the pool's timeout), 500 PoolTimeout and reset connections.
    _shipment(db_dsn)
    with serve(settings) as url:
        codes = asyncio.run(_clients(url, people["viewer"].headers, 50, 8.0))
    assert set(codes) <= {"200", "503"}, codes
    assert codes["200"] >= 100 and codes["200"] > 10 * codes["503"], codes


@contextlib.contextmanager
def _locked(superuser_dsn: str, table: str) -> Iterator[None]:
    """Hold an exclusive lock on ``table`` so every query of it waits (a stuck request)."""
    with psycopg.connect(superuser_dsn) as conn:
        conn.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
        yield
        conn.rollback()


def _wait_until_blocked(superuser_dsn: str) -> None:
    """Until an app query waits on the lock."""
    deadline = time.monotonic() + 10
    with psycopg.connect(superuser_dsn, autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
            ).fetchone()
            if row and row[0] > 0:
                return
            time.sleep(0.05)
    raise AssertionError("no query waited on the lock")


def test_a_saturated_server_answers_503_with_retry_after(
    settings: Settings, db_dsn: str, superuser_dsn: str, people: dict[str, Person]
) -> None:
    _shipment(db_dsn)
    busy = settings.model_copy(
        update={"web": WebSettings(max_concurrent_requests=1, queue_timeout_s=0.5)}
    )
    headers = people["viewer"].headers
    with serve(busy) as url, ThreadPoolExecutor(1) as pool:
        with _locked(superuser_dsn, "shipments"):
            stuck = pool.submit(httpx.get, url + "/api/v1/shipments", headers=headers, timeout=30)
            _wait_until_blocked(superuser_dsn)
            refused = httpx.get(url + "/api/v1/shipments/SHP-1", headers=headers, timeout=30)
            assert refused.status_code == 503, refused.text
            assert refused.headers["Retry-After"] == "1"
            assert "busy" in refused.json()["detail"]
            assert httpx.get(url + "/healthz", timeout=10).status_code == 200  # not in line
        assert stuck.result().status_code == 200  # the stuck one finishes once the lock goes
        assert httpx.get(url + "/api/v1/shipments", headers=headers).status_code == 200


def test_no_free_connection_is_503_not_500(
    settings: Settings, db_dsn: str, superuser_dsn: str, people: dict[str, Person]
) -> None:
    _shipment(db_dsn)
    small = settings.model_copy(
        update={
            "db": settings.db.model_copy(
                update={"pool_min": 1, "pool_max": 1, "pool_timeout_s": 0.5}
            ),
            "web": WebSettings(max_concurrent_requests=4),
        }
    )
    headers = people["viewer"].headers
    with serve(small) as url, ThreadPoolExecutor(1) as pool:
        with _locked(superuser_dsn, "shipments"):
            stuck = pool.submit(httpx.get, url + "/api/v1/shipments", headers=headers, timeout=30)
            _wait_until_blocked(superuser_dsn)
            refused = httpx.get(url + "/api/v1/shipments/SHP-1", headers=headers, timeout=30)
            assert refused.status_code == 503, refused.text
            assert int(refused.headers["Retry-After"]) >= 1
        assert stuck.result().status_code == 200


def test_a_client_sending_its_body_slowly_holds_no_place(
    settings: Settings, db_dsn: str, people: dict[str, Person]
) -> None:
    # One place only: if the stalled upload held it, the GET would wait its 1 s and get a 503.
    _shipment(db_dsn)
    busy = settings.model_copy(
        update={"web": WebSettings(max_concurrent_requests=1, queue_timeout_s=1.0)}
    )
    with serve(busy) as url:
        port = int(url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as slow:
            slow.sendall(
                b"POST /api/v1/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                b'Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"user'
            )
            time.sleep(0.3)
            for _ in range(3):
                r = httpx.get(
                    url + "/api/v1/shipments", headers=people["viewer"].headers, timeout=10
                )
                assert r.status_code == 200, r.text


@pytest.fixture
def own_cluster() -> Iterator[PostgresCluster]:
    """A PostgreSQL cluster of this test's own (the session's is shared: not to be restarted)."""
    root = Path(tempfile.mkdtemp(prefix="coldchain-restart-"))
    root.chmod(0o755)
    (root / "pg").mkdir()
    (root / "pg").chmod(0o755)
    cluster = PostgresCluster(
        root / "pg" / "data", free_port(), extra_conf={"timescaledb.max_background_workers": "0"}
    )
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


def test_every_request_succeeds_after_postgresql_restarts(
    own_cluster: PostgresCluster, settings: Settings
) -> None:
    own_cluster.ensure_database(
        "coldchain", OWNER_USER, OWNER_PASSWORD, app_user=APP_USER, app_password=APP_PASSWORD
    )
    db = DbSettings(
        port=own_cluster.port,
        name="coldchain",
        user=APP_USER,
        password=APP_PASSWORD,
        owner_user=OWNER_USER,
        owner_password=OWNER_PASSWORD,
        pool_min=8,  # every pooled connection open, so every one goes stale in the restart
    )
    migrate(db.migration_dsn)
    _shipment(db.dsn)
    token = issue_token(db.dsn, add_user(db.dsn, "vera.viewer", "viewer"))
    headers = {"Authorization": f"Bearer {token}"}
    with serve(settings.model_copy(update={"db": db})) as url:
        with ThreadPoolExecutor(8) as pool:  # use all 8 connections once
            before = list(
                pool.map(lambda p: httpx.get(url + p, headers=headers, timeout=30), PATHS * 4)
            )
        assert {r.status_code for r in before} == {200}
        own_cluster.stop()
        own_cluster.start()
        after = [httpx.get(url + PATHS[i % 3], headers=headers, timeout=30) for i in range(20)]
    assert [r.status_code for r in after] == [200] * 20, [r.text for r in after if r.is_error]
