"""``/oncall/rotations`` over HTTP on the real database: administrators create and edit
rotations and add overrides, everyone reads who is on call now; bad values are 422 naming the
field; every change is in the audit trail. And the rules engine's rotation tier: the person on
call at the moment of notifying, by their own contacts, with a visible warning when one is
missing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg_pool import AsyncConnectionPool

from alerts.rounds import RulesEngine
from alerts.rules import EscalationPolicy, EscalationTier, RulesFile
from api.app import create_app
from coldchain.oncall import Rotation, who_is_on_call
from coldchain.settings import AlertsSettings, Settings
from coldchain.telemetry import Reading
from ingest.sink import Batch, TimescaleSink
from services import accounts
from services.alerts import alert_board
from services.caller import Caller
from tests.fixtures.auth import Person, add_user
from tests.fixtures.data import seed_shipment

pytestmark = pytest.mark.integration

API = "/api/v1"
BERLIN = ZoneInfo("Europe/Berlin")


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as c:
        yield c


def tower(members: list[str], **changes: Any) -> dict[str, Any]:
    body = {
        "name": "cold-chain-tower",
        "team": "Control tower",
        "time_zone": "Europe/Berlin",
        "handover_time": "09:00",
        "shift_days": 1,
        "start_date": str(date.today() - timedelta(days=10)),
        "members": members,
    }
    return {**body, **changes}


def expected_now(members: list[str]) -> str | None:
    """Who the schedule puts on call now, asked of the pure function on its own."""
    rotation = Rotation(
        "cold-chain-tower",
        "Control tower",
        "Europe/Berlin",
        datetime.strptime("09:00", "%H:%M").time(),
        1,
        date.today() - timedelta(days=10),
    )
    return who_is_on_call(rotation, members, [], datetime.now(UTC))


def test_admins_edit_rotations_everyone_reads_them(
    client: TestClient, people: dict[str, Person], db_dsn: str
) -> None:
    admin, viewer = people["admin"].headers, people["viewer"].headers
    members = [people["operator"].username, people["admin"].username]
    r = client.post(f"{API}/oncall/rotations", json=tower(members), headers=viewer)
    assert r.status_code == 403, r.text
    r = client.post(f"{API}/oncall/rotations", json=tower(members), headers=admin)
    assert r.status_code == 201, r.text
    assert r.json()["on_call"]["username"] == expected_now(members)
    assert (
        client.post(f"{API}/oncall/rotations", json=tower(members), headers=admin).status_code
        == 409
    )

    r = client.get(f"{API}/oncall/rotations", headers=viewer)
    assert r.status_code == 200, r.text
    [shown] = r.json()
    assert [m["username"] for m in shown["members"]] == members
    assert len(shown["handovers"]) == 6
    assert shown["handovers"][0]["username"] == expected_now(members)

    # Reorder (the other one is on call now), with why.
    reordered = list(reversed(members))
    body = {k: v for k, v in tower(reordered).items() if k != "name"}
    r = client.put(f"{API}/oncall/rotations/cold-chain-tower", json=body, headers=admin,
                   params={"reason": "swap after the holidays"})  # fmt: skip
    assert r.status_code == 200, r.text
    assert r.json()["on_call"]["username"] == expected_now(reordered)

    # An override wins while it lasts.
    now = datetime.now(UTC)
    override = {
        "username": people["qa"].username,
        "starts_at": (now - timedelta(minutes=1)).isoformat(),
        "ends_at": (now + timedelta(hours=8)).isoformat(),
        "reason": "Ben is ill",
    }
    r = client.post(f"{API}/oncall/rotations/cold-chain-tower/overrides", json=override,
                    headers=admin)  # fmt: skip
    assert r.status_code == 201, r.text
    r = client.get(f"{API}/oncall/rotations/cold-chain-tower", headers=viewer)
    assert r.json()["on_call"]["username"] == people["qa"].username
    assert [o["reason"] for o in r.json()["overrides"]] == ["Ben is ill"]

    with psycopg.connect(db_dsn) as conn:
        audited = conn.execute(
            """SELECT entity, action, actor, reason FROM audit_log
               WHERE entity LIKE 'oncall%%' ORDER BY seq"""
        ).fetchall()
    tables = {(t, op) for t, op, _a, _r in audited}
    assert {("oncall_rotations", "insert"), ("oncall_rotations", "update"),
            ("oncall_members", "insert"), ("oncall_overrides", "insert")} <= tables  # fmt: skip
    assert ("Ben is ill" in {r for *_x, r in audited}) and all(
        a == people["admin"].username for _t, _o, a, _r in audited
    )


BAD: list[tuple[dict[str, Any], str]] = [
    ({"time_zone": "Mars/Olympus"}, "time_zone"),
    ({"members": ["nobody-here"]}, "members"),
    ({"shift_days": 0}, "shift_days"),
    ({"handover_time": "25:00"}, "handover_time"),
    ({"name": "Cold Chain"}, "name"),
]


def test_a_bad_rotation_is_refused_naming_the_field(
    client: TestClient, people: dict[str, Person]
) -> None:
    for change, field in BAD:
        r = client.post(f"{API}/oncall/rotations", json={**tower([]), **change},
                        headers=people["admin"].headers)  # fmt: skip
        assert r.status_code == 422, r.text
        assert field in r.text
    assert client.get(f"{API}/oncall/rotations", headers=people["viewer"].headers).json() == []


def test_contacts_are_checked_and_a_phone_is_one_persons(
    client: TestClient, people: dict[str, Person]
) -> None:
    admin = people["admin"].headers
    url = f"{API}/users/{people['operator'].username}/contacts"
    r = client.put(url, json={"email": "ana@example.com", "phone": "+41 79 123 45 67"},
                   headers=admin)  # fmt: skip
    assert r.status_code == 200, r.text
    assert (r.json()["email"], r.json()["phone"]) == ("ana@example.com", "+41791234567")
    other = f"{API}/users/{people['qa'].username}/contacts"
    for body, status, field in (({"email": "ana"}, 422, "email"),
                                ({"phone": "0791234567"}, 422, "phone"),
                                ({"phone": "+41791234567"}, 409, "phone")):  # fmt: skip
        r = client.put(other, json=body, headers=admin)
        assert r.status_code == status and r.json()["detail"].startswith(f"{field}:"), r.text
    r = client.put(other, json={"email": "qa@example.com"}, headers=people["operator"].headers)
    assert r.status_code == 403, r.text


T0 = datetime(2026, 3, 29, 6, 0, tzinfo=UTC)  # Berlin's spring change: 08:00 CEST


async def test_a_rotation_tier_tells_the_person_on_call_now_and_says_what_it_could_not(
    settings: Settings, db_dsn: str
) -> None:
    for name in ("ana", "ben"):
        add_user(db_dsn, name, "operator")
    with psycopg.connect(db_dsn, autocommit=True, row_factory=psycopg.rows.dict_row) as conn:
        accounts.set_contacts(
            conn, Caller.console(), username="ana", email="ana@example.com", phone=None
        )
        accounts.set_contacts(
            conn, Caller.console(), username="ben", email="ben@example.com", phone="+41791234567"
        )
        conn.execute(
            """INSERT INTO oncall_rotations (name, team, time_zone, handover_time, shift_days,
                   start_date) VALUES ('cold-chain-tower', 'Tower', 'Europe/Berlin', '09:00', 1,
                   '2026-03-28') RETURNING rotation_id"""
        )
        conn.execute(
            """INSERT INTO oncall_members SELECT rotation_id, p, u FROM oncall_rotations,
                   (VALUES (0, 'ana'), (1, 'ben')) AS m(p, u)"""
        )
    # 2026-03-29 08:30 Berlin: still ana's shift (since 28 March 09:00), ben's from 09:00.
    alerts = AlertsSettings.model_validate(
        {**settings.alerts.model_dump(), "smtp_host": "127.0.0.1"}
    )
    s = settings.model_copy(update={"alerts": alerts})
    rules = RulesFile(
        escalation=EscalationPolicy(
            tiers=[EscalationTier(name="tower", rotation="cold-chain-tower", via=["email", "sms"])]
        )
    )
    start = T0 - timedelta(hours=1)
    seed_shipment(db_dsn, start=start - timedelta(hours=1))
    async with AsyncConnectionPool(db_dsn, open=False, min_size=1, max_size=2) as pool:
        await pool.wait()
        readings = [Reading("LOG-1", start + timedelta(minutes=m), 12.0) for m in range(60)]
        await TimescaleSink(pool).write(Batch.of(readings))
        engine = RulesEngine(pool, s, clock=lambda: T0 + timedelta(minutes=30), rules_file=rules)
        await engine.setup()
        await engine.process_changes()
    with psycopg.connect(db_dsn) as conn:
        sent = conn.execute("SELECT channel, target FROM notifications").fetchall()
        warnings = conn.execute(
            "SELECT comment FROM alert_events WHERE kind = 'notification_warning'"
        ).fetchall()
    assert sent == [("email", "ana@example.com")]  # ana is on call at 08:30 Berlin time
    assert len(warnings) == 1
    # sms is not a configured channel yet on this branch: said, not silently skipped.
    assert "sms" in warnings[0][0] and "ana" in warnings[0][0]
    # The alerts page shows it with the alert, where the people handling it look.
    with psycopg.connect(db_dsn, row_factory=psycopg.rows.dict_row) as conn:
        [row] = alert_board(conn).items
    assert row["notification_warnings"] == [warnings[0][0]]
