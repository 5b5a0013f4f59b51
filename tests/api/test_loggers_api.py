"""Registering a logger through the API issues its MQTT credentials once, writes them into the
broker's password file, and a real Mosquitto (with the project's plugin, started on those files)
accepts readings published with them: the ingester stores them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg.rows import dict_row

from api.app import create_app
from coldchain.settings import Settings
from launcher.localstack import MosquittoBroker, free_port
from security import devices
from security.audit import AuditContext
from tests.fixtures.auth import Person
from tests.security.test_mqtt import _as_ingester, _ingesting, _publish_as, _wait_readings

pytestmark = pytest.mark.integration

LOGGER = {
    "device_id": "TT4-000123",
    "model": "TempTrace 4",
    "interval_s": 60,
    "calibration_cert": "CAL-2026-0042",
    "calibration_due": "2027-06-30",
}


@pytest.fixture
def local(settings: Settings, tmp_path: Path) -> Settings:
    """This test's settings with a stack folder of its own holding broker files."""
    (tmp_path / "stack" / "mosquitto").mkdir(parents=True)
    return settings.model_copy(
        update={"stack": settings.stack.model_copy(update={"data_dir": tmp_path / "stack"})}
    )


@pytest.fixture
def app(local: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(local)) as c:
        yield c


async def test_a_registered_logger_gets_credentials_once_and_the_broker_accepts_them(
    app: TestClient, people: dict[str, Person], local: Settings, db_dsn: str, tmp_path: Path
) -> None:
    admin = people["admin"].headers
    # The ingester's account, as `coldchain up` makes it before anything is registered.
    with psycopg.connect(db_dsn, autocommit=True, row_factory=dict_row) as conn:
        service_accounts = devices.provision(
            conn,
            topic_root=local.mqtt.topic_root,
            out_dir=local.stack.data_dir / "mosquitto",
            services=[devices.INGEST_ACCOUNT],
            ctx=AuditContext("cli:test", "admin", "test", "stack set up"),
        )

    r = app.post("/api/v1/devices", json=LOGGER, headers=admin)
    assert r.status_code == 201, r.text
    body = r.json()
    password = body["mqtt_password"]
    assert password and body["mqtt_username"] == LOGGER["device_id"]
    assert body["broker_files_written"] is True
    assert body["telemetry_topic"] == f"{local.mqtt.topic_root}/devices/TT4-000123/telemetry"
    assert body["logger"]["version"] == 1 and r.headers["ETag"] == '"1"'
    passwd = (local.stack.data_dir / "mosquitto" / "passwd").read_text()
    assert any(line.startswith("TT4-000123:$7$") for line in passwd.splitlines())
    assert password not in passwd

    again = app.post("/api/v1/devices", json=LOGGER, headers=admin)
    assert again.status_code == 200 and again.json()["mqtt_password"] is None  # shown once
    assert app.post("/api/v1/devices", json=LOGGER, headers=people["qa"].headers).status_code == 403

    broker = MosquittoBroker(
        tmp_path / "broker",
        free_port(),
        password_file=service_accounts.password_file,
        acl_file=service_accounts.acl_file,
        subscribers=(devices.INGEST_ACCOUNT.username,),
    )
    broker.start()
    try:
        ingest_settings = _as_ingester(local, broker, service_accounts)
        async with _ingesting(ingest_settings, db_dsn):
            sent = await _publish_as(broker.port, "TT4-000123", password, local.mqtt.topic_root, 5)
            assert await _wait_readings(db_dsn, len(sent), within=20) == len(sent)
    finally:
        broker.stop()


def test_a_retired_logger_loses_its_credentials(
    app: TestClient, people: dict[str, Person], local: Settings
) -> None:
    admin = people["admin"].headers
    assert app.post("/api/v1/devices", json=LOGGER, headers=admin).status_code == 201
    url = f"/api/v1/devices/{LOGGER['device_id']}"
    stale = app.patch(url, json={"interval_s": 120}, params={"reason": "x"},
                      headers={**admin, "If-Match": '"7"'})  # fmt: skip
    assert stale.status_code == 412
    r = app.patch(url, json={"calibration_due": "2028-01-31", "calibration_cert": "CAL-2027-1"},
                  params={"reason": "recalibrated"}, headers={**admin, "If-Match": '"1"'})  # fmt: skip
    assert r.status_code == 200, r.text
    assert r.json()["calibration_due"] == "2028-01-31" and r.headers["ETag"] == '"2"'
    r = app.post(f"{url}/retire", params={"reason": "battery failed"},
                 headers={**admin, "If-Match": '"2"'})  # fmt: skip
    assert r.status_code == 200 and r.json()["retired_at"] is not None
    passwd = (local.stack.data_dir / "mosquitto" / "passwd").read_text()
    assert "TT4-000123:" not in passwd
