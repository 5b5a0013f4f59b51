"""Device credentials on a real Mosquitto: each logger publishes only to its own topic, and a
payload that names another logger on a logger's own topic is dead-lettered by the ingester.
A logger's credentials can neither subscribe (so it cannot join the ingester's shared group and
have the fleet's messages dropped) nor take the ingester's client id (issue 11, point 1).

A private broker per test (the session's broker is anonymous and shared), run with the password
file and ACL that `coldchain devices provision` writes from the test's device registry, and the
broker plugin (deploy/mosquitto-plugin) that `coldchain up` loads with them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiomqtt
import psycopg
import pytest
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool
from pydantic import SecretStr

from coldchain.settings import Settings
from coldchain.telemetry import Reading, reading_dict, reading_payload, telemetry_topic
from ingest.service import Ingester
from ingest.sink import TimescaleSink
from launcher.localstack import MosquittoBroker, free_port, make_local_tls
from security import devices
from security.audit import AuditContext
from tests.fixtures.web import add_device

pytestmark = pytest.mark.integration

CTX = AuditContext("cli:test", "admin", "test", "provisioning")


@pytest.fixture
def secured(
    db_dsn: str, tmp_path: Path, topic_root: str
) -> Iterator[tuple[MosquittoBroker, devices.ProvisionResult]]:
    """Two registered loggers with credentials, and a broker that enforces them."""
    with psycopg.connect(db_dsn, autocommit=True, row_factory=dict_row) as conn:
        add_device(conn, "LOG-A")
        add_device(conn, "LOG-B")
        add_device(conn, "LOG:C")  # a ':' cannot be a Mosquitto user name
        result = devices.provision(
            conn,
            topic_root=topic_root,
            out_dir=tmp_path / "mqtt",
            services=[devices.INGEST_ACCOUNT],
            ctx=CTX,
        )
    broker = MosquittoBroker(
        tmp_path / "broker",
        free_port(),
        password_file=result.password_file,
        acl_file=result.acl_file,
        subscribers=(devices.INGEST_ACCOUNT.username,),
    )
    broker.start()
    try:
        yield broker, result
    finally:
        broker.stop()


def _client(
    port: int, user: str | None, password: str | None, name: str, **kw: Any
) -> aiomqtt.Client:
    return aiomqtt.Client(
        "127.0.0.1",
        port,
        username=user,
        password=password,
        identifier=name,
        protocol=aiomqtt.ProtocolVersion.V5,
        **kw,
    )


def _as_ingester(
    settings: Settings,
    broker: MosquittoBroker,
    creds: devices.ProvisionResult,
    **mqtt: Any,
) -> Settings:
    """This test's settings, with the ingester's account on the secured broker."""
    update = {
        "port": broker.port,
        "username": "coldchain-ingest",
        "password": SecretStr(creds.services["coldchain-ingest"]),
        "client_id": "coldchain-ingest",
        **mqtt,
    }
    return settings.model_copy(update={"mqtt": settings.mqtt.model_copy(update=update)})


@contextlib.asynccontextmanager
async def _ingesting(settings: Settings, db_dsn: str) -> AsyncIterator[Ingester]:
    stop = asyncio.Event()
    async with AsyncConnectionPool(db_dsn, open=False, min_size=1, max_size=2) as pool:
        await pool.wait()
        ingester = Ingester(settings, TimescaleSink(pool))
        task = asyncio.create_task(ingester.run(stop))
        try:
            await asyncio.wait_for(ingester.connected.wait(), 20)
            yield ingester
        finally:
            stop.set()
            await asyncio.wait_for(task, 30)


async def _publish_as(
    port: int, device: str, password: str, topic_root: str, n: int
) -> list[Reading]:
    """``n`` readings from ``device`` with its own credentials, each PUBACKed by the broker."""
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=n)
    readings = [Reading(device, start + timedelta(seconds=i), 5.0) for i in range(n)]
    async with _client(port, device, password, device) as pub:
        for r in readings:
            await pub.publish(telemetry_topic(topic_root, device), reading_payload(r), qos=1)
    return readings


async def _wait_readings(db_dsn: str, n: int, within: float) -> int:
    """Poll the database (the only witness that counts) until n rows or the time is up."""
    for _ in range(int(within / 0.2)):
        with psycopg.connect(db_dsn) as conn:
            row = conn.execute("SELECT count(*) FROM readings").fetchone()
        if row is not None and row[0] >= n:
            return int(row[0])
        await asyncio.sleep(0.2)
    with psycopg.connect(db_dsn) as conn:
        row = conn.execute("SELECT count(*) FROM readings").fetchone()
    return int(row[0]) if row else 0


async def _collect(client: aiomqtt.Client, seconds: float) -> list[tuple[str, bytes]]:
    got: list[tuple[str, bytes]] = []

    async def read() -> None:
        async for m in client.messages:
            got.append((str(m.topic), bytes(m.payload)))

    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(read(), seconds)
    return got


def test_provisioning_issues_once_and_rotates_on_request(
    secured: tuple[MosquittoBroker, devices.ProvisionResult],
    db_dsn: str,
    tmp_path: Path,
    topic_root: str,
) -> None:
    _, result = secured
    assert set(result.issued) == {"LOG-A", "LOG-B"} and result.skipped == ["LOG:C"]
    assert result.credentials_file is not None
    assert result.credentials_file.stat().st_mode & 0o777 == 0o600
    assert "LOG-A" in result.credentials_file.read_text()
    with psycopg.connect(db_dsn, autocommit=True, row_factory=dict_row) as conn:
        again = devices.provision(conn, topic_root=topic_root, out_dir=tmp_path / "mqtt", ctx=CTX)
        assert again.issued == {} and again.devices_with_credentials == 2
        rotated = devices.provision(
            conn, topic_root=topic_root, out_dir=tmp_path / "mqtt", rotate=True, ctx=CTX
        )
        assert set(rotated.issued) == {"LOG-A", "LOG-B"}
        assert rotated.issued["LOG-A"] != result.issued["LOG-A"]
        audited = conn.execute(
            "SELECT count(*) AS n FROM audit_log WHERE entity = 'device_credentials'"
        ).fetchone()
        stored = conn.execute("SELECT password_hash FROM device_credentials").fetchall()
    assert audited is not None and audited["n"] == 4  # two issued, two rotated
    assert all(r["password_hash"].startswith("$7$") for r in stored)
    passwd = (tmp_path / "mqtt" / "passwd").read_text()
    assert result.issued["LOG-A"] not in passwd and "coldchain-ingest:$7$" in passwd


async def test_a_logger_cannot_publish_as_another(
    secured: tuple[MosquittoBroker, devices.ProvisionResult], topic_root: str
) -> None:
    broker, creds = secured
    ingest_pw = creds.services["coldchain-ingest"]
    now = datetime.now(UTC)
    async with _client(broker.port, "coldchain-ingest", ingest_pw, "coldchain-ingest:sub") as sub:
        await sub.subscribe(f"$share/g/{topic_root}/devices/+/telemetry", qos=1)
        async with _client(broker.port, "LOG-A", creds.issued["LOG-A"], "LOG-A") as a:
            forged = reading_payload(Reading("LOG-B", now, 25.0))
            await a.publish(telemetry_topic(topic_root, "LOG-B"), forged, qos=1)
            own = reading_payload(Reading("LOG-A", now, 5.0))
            await a.publish(telemetry_topic(topic_root, "LOG-A"), own, qos=1)
        got = await _collect(sub, 1.5)
    assert got == [(telemetry_topic(topic_root, "LOG-A"), own)]  # the forgery never arrived


@pytest.mark.parametrize(
    ("user", "password"),
    [("LOG-A", "wrong-password"), ("LOG-A", None), (None, None), ("LOG:C", "anything")],
)
async def test_the_broker_refuses_unknown_credentials(
    secured: tuple[MosquittoBroker, devices.ProvisionResult], user: str | None, password: str | None
) -> None:
    broker, _ = secured
    with pytest.raises(aiomqtt.MqttError):
        async with _client(broker.port, user, password, user or "intruder"):
            pass


async def test_a_payload_naming_another_logger_is_dead_lettered(
    secured: tuple[MosquittoBroker, devices.ProvisionResult],
    settings: Settings,
    db_dsn: str,
    topic_root: str,
) -> None:
    broker, creds = secured
    live = _as_ingester(settings, broker, creds)
    stop = asyncio.Event()
    async with AsyncConnectionPool(db_dsn, open=False, min_size=1, max_size=2) as pool:
        await pool.wait()
        ingester = Ingester(live, TimescaleSink(pool))
        task = asyncio.create_task(ingester.run(stop))
        try:
            await asyncio.wait_for(ingester.connected.wait(), 20)
            now = datetime.now(UTC).replace(microsecond=0)
            claims_b = reading_dict(Reading("LOG-B", now, 25.0))
            async with _client(broker.port, "LOG-A", creds.issued["LOG-A"], "LOG-A") as a:
                topic = telemetry_topic(topic_root, "LOG-A")
                await a.publish(topic, __import__("json").dumps(claims_b).encode(), qos=1)
                await a.publish(topic, reading_payload(Reading("LOG-A", now, 5.0)), qos=1)
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                with psycopg.connect(db_dsn) as conn:
                    dead = conn.execute("SELECT device_id, reason FROM dead_letters").fetchall()
                    readings = conn.execute("SELECT device_id FROM readings").fetchall()
                if dead and readings:
                    break
                await asyncio.sleep(0.1)
        finally:
            stop.set()
            await asyncio.wait_for(task, 30)
    assert readings == [("LOG-A",)]
    assert len(dead) == 1 and "differs from the topic" in dead[0][1]


@contextlib.asynccontextmanager
async def _tls_broker(tmp_path: Path) -> AsyncIterator[tuple[MosquittoBroker, Path]]:
    tls = make_local_tls(tmp_path / "tls")
    broker = MosquittoBroker(
        tmp_path / "tls-broker", free_port(), certfile=tls.cert_file, keyfile=tls.key_file
    )
    broker.start()
    try:
        yield broker, tls.ca_file
    finally:
        broker.stop()


async def test_tls_is_one_setting_away(tmp_path: Path) -> None:
    async with _tls_broker(tmp_path) as (broker, ca):
        context = ssl.create_default_context(cafile=str(ca))  # hostname checked: 127.0.0.1
        async with _client(broker.port, None, None, "tls-client", tls_context=context) as c:
            await c.publish("t/x", b"over tls", qos=1)
        with pytest.raises(aiomqtt.MqttError):  # the same port without TLS is refused
            async with _client(broker.port, None, None, "plain", timeout=3):
                pass
        strange = ssl.create_default_context()  # not trusting the local CA
        with pytest.raises(aiomqtt.MqttError):
            async with _client(broker.port, None, None, "untrusting", tls_context=strange):
                pass


@pytest.mark.parametrize("shared_group", [None, "ingest"])
async def test_a_logger_can_subscribe_to_nothing_and_the_fleet_loses_nothing(
    secured: tuple[MosquittoBroker, devices.ProvisionResult],
    settings: Settings,
    db_dsn: str,
    topic_root: str,
    shared_group: str | None,
) -> None:
    """The attack of issue 11 point 1: a logger joins the ingester's subscription (the shared
    group when one is configured, where the broker would hand it every other message and drop
    them). Every SUBSCRIBE is refused, and every reading the fleet publishes is stored."""
    broker, creds = secured
    live = _as_ingester(settings, broker, creds, shared_group=shared_group)
    filters = [
        f"$share/ingest/{topic_root}/devices/+/telemetry",
        f"$share/ingest/{topic_root}/devices/+/status",
        f"{topic_root}/devices/+/telemetry",
        f"{topic_root}/devices/LOG-B/telemetry",
        f"{topic_root}/devices/LOG-A/telemetry",  # not even its own
        "#",
    ]
    async with _ingesting(live, db_dsn):
        async with _client(broker.port, "LOG-A", creds.issued["LOG-A"], "LOG-A") as spy:
            refused = [await spy.subscribe(f, qos=1) for f in filters]
            sent = await _publish_as(broker.port, "LOG-B", creds.issued["LOG-B"], topic_root, 300)
            leaked = await _collect(spy, 1.0)
        stored = await _wait_readings(db_dsn, len(sent), 20)
    # 0x87 "not authorized" for each (MQTT 5); nothing was subscribed, nothing delivered.
    codes = [[getattr(c, "value", c) for c in reason_codes] for reason_codes in refused]
    assert codes == [[0x87]] * len(filters)
    assert leaked == []
    assert stored == len(sent) == 300
    log = broker.log_file.read_text()
    assert "coldchain_auth: refusing SUBSCRIBE" in log


async def test_a_logger_cannot_take_the_ingesters_client_id(
    secured: tuple[MosquittoBroker, devices.ProvisionResult],
    settings: Settings,
    db_dsn: str,
    topic_root: str,
) -> None:
    """The other attack of point 1: a logger connects as ``coldchain-ingest`` (clean start, which
    would also wipe the ingester's session and its queue) again and again while the fleet
    publishes. It is refused before any session is touched; the ingester stays connected and
    stores everything."""
    broker, creds = secured
    live = _as_ingester(settings, broker, creds)
    refusals = 0

    async def usurp() -> None:
        nonlocal refusals
        for client_id in ["coldchain-ingest", "coldchain-ingest:2", "LOG-Ax"] * 5:
            with pytest.raises(aiomqtt.MqttError, match=r"[Nn]ot authori[sz]ed"):
                async with _client(
                    broker.port, "LOG-A", creds.issued["LOG-A"], client_id, clean_start=True
                ):
                    pass
            refusals += 1
            await asyncio.sleep(0.05)

    async with _ingesting(live, db_dsn) as ingester:
        sent, _ = await asyncio.gather(
            _publish_as(broker.port, "LOG-B", creds.issued["LOG-B"], topic_root, 300), usurp()
        )
        stored = await _wait_readings(db_dsn, len(sent), 20)
        assert ingester.connected.is_set()
    assert refusals == 15
    assert stored == len(sent) == 300
    log = broker.log_file.read_text()
    assert log.count("coldchain_auth: refusing user LOG-A with client id coldchain-ingest") == 10
    # One connection of the ingester from start to end: it was never knocked off.
    assert log.count(" as coldchain-ingest (") == 1


async def test_a_refused_subscription_is_an_error_not_a_silent_loss(
    db_dsn: str,
    tmp_path: Path,
    topic_root: str,
    settings: Settings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A broker that does not let the ingester's account subscribe (a misconfigured plugin list)
    PUBACKs the fleet's readings and drops them. The ingester must not report itself connected
    and subscribed: it logs the refusal at ERROR and keeps retrying until the broker allows it."""
    with psycopg.connect(db_dsn, autocommit=True, row_factory=dict_row) as conn:
        add_device(conn, "LOG-A")
        creds = devices.provision(
            conn,
            topic_root=topic_root,
            out_dir=tmp_path / "mqtt",
            services=[devices.INGEST_ACCOUNT],
            ctx=CTX,
        )
    broker = MosquittoBroker(
        tmp_path / "broker",
        free_port(),
        password_file=creds.password_file,
        acl_file=creds.acl_file,
        subscribers=(),  # nobody may subscribe: the misconfiguration
    )
    broker.start()
    try:
        live = _as_ingester(settings, broker, creds)
        stop = asyncio.Event()
        async with AsyncConnectionPool(db_dsn, open=False, min_size=1, max_size=2) as pool:
            await pool.wait()
            ingester = Ingester(live, TimescaleSink(pool))
            task = asyncio.create_task(ingester.run(stop))
            with caplog.at_level(logging.INFO, logger="ingest.service"):
                await asyncio.sleep(3.0)
                assert not ingester.connected.is_set()
                stop.set()
                await asyncio.wait_for(task, 30)
        refusals = [r for r in caplog.records if "refused the subscription" in r.getMessage()]
        assert refusals and all(r.levelno == logging.ERROR for r in refusals)
        assert not [r for r in caplog.records if "ingester subscribed" in r.getMessage()]
    finally:
        broker.stop()
