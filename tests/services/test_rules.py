"""Stored rule versions and the effective rules as services, against the real database; and
the effective rules the API shows are those the rules engine judges by (alerts.in_force)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg_pool import AsyncConnectionPool

from alerts.rounds import RulesEngine
from api.app import create_app
from coldchain.errors import ConfigError, NotFoundError, PermissionDeniedError
from coldchain.settings import Settings
from db.types import Conn
from security.roles import Role
from services import rules
from services.caller import Caller
from services.reports import ReportSettings
from tests.fixtures.auth import Person
from tests.fixtures.web import add_product, add_shipment

pytestmark = pytest.mark.integration

REFERENCE = "SHP-RULES"
WHY = "CAPA-2026-040: lane requalified"
RULES_FILE = f"""
[products."09506000134352"]
temperature = {{ alarm_delay_min = 20 }}

[shipments."{REFERENCE}"]
temperature = {{ freeze_c = 0.5 }}
"""


@pytest.fixture
def settings(settings: Settings, tmp_path: Path) -> Settings:
    """Settings with a rules file, so that every layer of the stack has something in it."""
    path = tmp_path / "rules.toml"
    path.write_text(RULES_FILE, "utf-8")
    return settings.model_copy(
        update={"alerts": settings.alerts.model_copy(update={"rules_file": path})}
    )


@pytest.fixture
def cfg(settings: Settings) -> ReportSettings:
    return ReportSettings.from_settings(settings)


@pytest.fixture
def scopes(db_dsn: str) -> dict[str, Any]:
    """A 2–8 °C product (the rules file's GTIN) and a shipment of it."""
    with psycopg.connect(db_dsn) as conn:
        gtin = add_product(conn)
        shipment_id = add_shipment(conn, REFERENCE, product=gtin)
    assert gtin == "09506000134352"
    return {"gtin": gtin, "shipment_id": shipment_id}


def _stored(conn: Conn) -> list[dict[str, Any]]:
    return conn.execute("SELECT * FROM rule_definitions ORDER BY id").fetchall()


def _audit(conn: Conn) -> list[dict[str, Any]]:
    return conn.execute(
        "SELECT actor, actor_role, source, reason, after FROM audit_log"
        " WHERE entity = 'rule_definitions' ORDER BY seq"
    ).fetchall()


def test_an_admin_adds_versions_and_the_audit_trail_names_them(
    conn: Conn, cfg: ReportSettings, caller: Callable[[Role], Caller], scopes: dict[str, Any]
) -> None:
    admin = caller("admin")
    gtin = scopes["gtin"]
    assert rules.product_rules(conn, cfg, gtin=gtin).current is None
    for delay in (5, 7):
        got = rules.add_product_version(
            conn, admin, cfg, gtin=gtin,
            definition={"temperature": {"alarm_delay_min": delay}}, reason=WHY,
        )  # fmt: skip
        assert got.current is not None and got.current["definition"] == {
            "temperature": {"alarm_delay_min": delay}
        }
        assert got.effective.temperature is not None
        assert got.effective.temperature.alarm_delay_min == delay
    shipment = rules.add_shipment_version(
        conn, admin, cfg, key=REFERENCE, definition={"temperature": {"low_c": 3}}, reason=WHY
    )
    assert (shipment.scope, shipment.shipment_id, shipment.gtin) == (
        "shipment",
        scopes["shipment_id"],
        gtin,
    )
    assert shipment.effective.sources[-3:] == (
        f"stored product rules {gtin} v2",
        f"{cfg.rules_file_name}: shipments.{REFERENCE}",
        f"stored shipment rules {REFERENCE} v1",
    )
    assert [v["version"] for v in rules.product_versions(conn, gtin=gtin)] == [1, 2]
    (version,) = rules.shipment_versions(conn, key=str(scopes["shipment_id"]))
    assert (version["created_by"], version["reason"]) == (admin.actor, WHY)
    audit = _audit(conn)
    assert len(audit) == 3
    for entry in audit:
        assert (entry["actor"], entry["actor_role"], entry["reason"]) == (admin.actor, "admin", WHY)
        assert admin.source is not None and entry["source"].startswith(f"{admin.source} [")


@pytest.mark.parametrize("role", ["viewer", "operator", "qa"])
def test_only_admins_add_versions_and_a_refusal_stores_nothing(
    conn: Conn,
    cfg: ReportSettings,
    caller: Callable[[Role], Caller],
    scopes: dict[str, Any],
    role: Role,
) -> None:
    who = caller(role)
    refused = re.escape("'admin' permission")
    with pytest.raises(PermissionDeniedError, match=refused):
        rules.add_product_version(conn, who, cfg, gtin=scopes["gtin"], definition={}, reason=WHY)
    with pytest.raises(PermissionDeniedError, match=refused):
        rules.add_shipment_version(conn, who, cfg, key=REFERENCE, definition={}, reason=WHY)
    assert _stored(conn) == [] and _audit(conn) == []


def test_a_bad_definition_names_its_field_and_an_unknown_scope_is_not_found(
    conn: Conn, cfg: ReportSettings, caller: Callable[[Role], Caller], scopes: dict[str, Any]
) -> None:
    admin = caller("admin")
    with pytest.raises(ConfigError, match=r"the form: temperature\.alarm_delay_mn: unknown"):
        rules.add_shipment_version(
            conn, admin, cfg, key=REFERENCE, reason=WHY, source="the form",
            definition={"temperature": {"alarm_delay_mn": 5}},
        )  # fmt: skip
    # valid alone, but above the product row's 8 °C it makes a range that cannot be
    with pytest.raises(ConfigError, match=r"merged with the rules below it.*low_c \(9\.0\)"):
        rules.add_product_version(
            conn, admin, cfg, gtin=scopes["gtin"], reason=WHY,
            definition={"temperature": {"low_c": 9}},
        )  # fmt: skip
    with pytest.raises(NotFoundError):
        rules.shipment_rules(conn, cfg, key="SHP-NOPE")
    with pytest.raises(NotFoundError):
        rules.product_versions(conn, gtin="99999999999999")
    assert _stored(conn) == [] and _audit(conn) == []


# ---- the API shows what the engine judges by ------------------------------------------------


@pytest.fixture
def through_api(
    settings: Settings, people: dict[Role, Person], scopes: dict[str, Any]
) -> Iterator[dict[str, Any]]:
    """Two stored versions of the product's rules and one of the shipment's, put through the
    API; then the shipment's rules as the API answers them."""
    puts = [
        (f"/api/v1/products/{scopes['gtin']}/rules", {"temperature": {"high_c": 7}}),
        (f"/api/v1/products/{scopes['gtin']}/rules", {"temperature": {"high_c": 6.5}}),
        (f"/api/v1/shipments/{REFERENCE}/rules", {"temperature": {"low_c": 3}, "mkt": {}}),
    ]
    with TestClient(create_app(settings)) as client:
        client.headers.update(people["admin"].headers)
        for url, body in puts:
            r = client.put(url, params={"reason": WHY}, json=body)
            assert r.status_code == 200, r.text
        r = client.get(f"/api/v1/shipments/{REFERENCE}/rules")
        assert r.status_code == 200, r.text
        yield r.json()


@pytest.fixture
async def pool(db_dsn: str) -> AsyncIterator[AsyncConnectionPool]:
    async with AsyncConnectionPool(db_dsn, open=False, min_size=1, max_size=2) as p:
        await p.wait()
        yield p


async def test_the_api_shows_the_effective_rules_the_engine_judges_by(
    through_api: dict[str, Any],
    pool: AsyncConnectionPool,
    settings: Settings,
    scopes: dict[str, Any],
) -> None:
    engine = RulesEngine(pool, settings, clock=lambda: datetime.now(UTC))
    async with pool.connection() as aconn:
        loaded = await engine._load_context(aconn, [scopes["shipment_id"]])
    judged = loaded[scopes["shipment_id"]].rules
    shown = through_api["effective"]
    expected = {
        name: None if (rule := judged.section(name)) is None else rule.model_dump(mode="json")
        for name in rules.SECTIONS
    }
    assert shown == {**expected, "sources": list(judged.sources)}
    # Every kind of layer is in it, so the equality is not the settings' alone.
    assert judged.sources[-5:] == (
        f"product {scopes['gtin']} (row)",
        f"{settings.alerts.rules_file}: products.{scopes['gtin']}",
        f"stored product rules {scopes['gtin']} v2",
        f"{settings.alerts.rules_file}: shipments.{REFERENCE}",
        f"stored shipment rules {REFERENCE} v1",
    )
    assert shown["temperature"]["low_c"] == 3.0 and shown["temperature"]["high_c"] == 6.5
