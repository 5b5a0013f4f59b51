"""services.ack against the real database: a one-time link acknowledges once, as the person it
was sent to; reused, expired, tampered, someone else's, another alert's and a wrong PIN are
refused, each with an audit entry; an SMS reply acknowledges from the phone it was sent to."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from alerts.escalation import Target
from alerts.outbox import LinkPolicy, queue_notifications
from coldchain.ack import new_token, token_hash
from coldchain.errors import (
    AckRefusedError,
    PermissionDeniedError,
    RateLimitedError,
    WeakPasswordError,
)
from db.queries import ack as ack_q
from db.types import Conn
from security import passwords
from security.ratelimit import LoginLimiter
from security.roles import Role
from services import ack
from services.caller import Caller
from tests.fixtures.auth import Person, password_hash
from tests.fixtures.web import add_alert, add_product, add_shipment
from tests.services.conftest import audit_rows

pytestmark = pytest.mark.integration

BASE = "https://cold.example"
PIN = "271828"
ANA_MAIL = "ana@example.com"
ANA_PHONE = "+31612345678"
HOOK = "https://hooks.example/tower"
CLIENT = "198.51.100.9"


@pytest.fixture
def alerts(db_dsn: str, people: dict[Role, Person]) -> tuple[int, int]:
    """Two open alerts; Ana (operator) and Adam (admin) with contacts and a PIN each."""
    return seed_alerts(db_dsn, people)


def seed_alerts(db_dsn: str, people: dict[Role, Person]) -> tuple[int, int]:
    """The :func:`alerts` fixture's data."""
    with psycopg.connect(db_dsn) as conn:
        shipment = add_shipment(conn, "SHP-ACK", product=add_product(conn))
        since = datetime.now(UTC) - timedelta(minutes=20)
        first = add_alert(conn, shipment, triggered_at=since)
        second = add_alert(conn, shipment, rule_key="battery_low", triggered_at=since)
        pin_hash = password_hash(PIN)  # hashed once per session
        for person, mail, phone in (
            (people["operator"], ANA_MAIL, ANA_PHONE),
            (people["admin"], "adam@example.com", "+31687654321"),
        ):
            conn.execute(
                "UPDATE app_users SET email = %s, phone = %s, ack_pin_hash = %s WHERE username = %s",
                (mail, phone, pin_hash, person.username),
            )
    return first, second


def links(dsn: str, alert_id: int, *targets: Target, state: str = "open") -> list[str]:
    """Queue an 'opened' notification per target as the engine does; their ack tokens."""

    async def queue() -> list[str]:
        async with await psycopg.AsyncConnection.connect(dsn) as conn:
            alert = {
                "alert_id": alert_id,
                "shipment_id": 1,
                "rule_key": "temp_high",
                "severity": "critical",
                "state": state,
                "title": "t",
            }
            policy = LinkPolicy(BASE, timedelta(hours=24))
            await queue_notifications(
                conn, alert, "opened", list(targets), links=policy, now=datetime.now(UTC)
            )
            cur = await conn.execute(
                "SELECT payload FROM notifications WHERE alert_id = %s ORDER BY id DESC LIMIT %s",
                (alert_id, len(targets)),
            )
            rows = await cur.fetchall()
        found = [r[0]["links"] for r in reversed(rows)]
        assert all(f["alert"] == f"{BASE}/alerts?alert={alert_id}" for f in found)
        return [f["ack"].rsplit("/", 1)[1] for f in found if "ack" in f]

    return asyncio.run(queue())


def limiter() -> LoginLimiter:
    return LoginLimiter(max_failures=3, window_s=60)


def use(conn: Conn, token: str, *, as_: Person | None = None, **kw: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "comment": "Acknowledged from email",
        "now": datetime.now(UTC),
        "client": CLIENT,
        "limiter": limiter(),
        "username": as_.username if as_ else None,
        "pin": PIN,
        **kw,
    }
    return ack.acknowledge_by_link(conn, token=token, **args)


def refusals(conn: Conn) -> list[tuple[str, str]]:
    return [(r["after"]["reason"], r["reason"]) for r in audit_rows(conn, "ack_links")]


def test_a_link_acknowledges_once_as_its_person_and_is_then_refused(
    conn: Conn, alerts: tuple[int, int], people: dict[Role, Person], db_dsn: str
) -> None:
    ana = people["operator"]
    (token,) = links(db_dsn, alerts[0], Target("email", ANA_MAIL, 0))
    stored = conn.execute("SELECT * FROM ack_links").fetchone()
    assert stored is not None
    assert (stored["username"], stored["token_hash"]) == (ana.username, token_hash(token))
    assert token not in str(stored)  # only the hash is kept

    page = ack.link_for_page(conn, token=token, now=datetime.now(UTC), client=CLIENT)
    assert (page["alert_id"], page["channel"], page["username"]) == (
        alerts[0],
        "email",
        ana.username,
    )
    row = use(conn, token, as_=ana)
    assert (row["state"], row["acked_by"]) == ("acknowledged", ana.username)

    with pytest.raises(AckRefusedError) as err:
        use(conn, token, as_=ana)
    assert err.value.reason == "used"
    assert f"already used by {ana.username} at" in str(err.value)
    assert refusals(conn) == [("used", str(err.value))]


def test_no_ack_link_once_the_alert_is_acknowledged(
    conn: Conn, alerts: tuple[int, int], db_dsn: str
) -> None:
    assert links(db_dsn, alerts[0], Target("email", ANA_MAIL, 0), state="acknowledged") == []
    assert conn.execute("SELECT count(*) AS n FROM ack_links").fetchone() == {"n": 0}


@pytest.mark.parametrize(
    "case", ["expired", "tampered", "garbage", "other_person", "other_alert", "wrong_pin", "no_pin"]
)
def test_each_refusal_is_refused_audited_and_leaves_the_alert_open(
    conn: Conn, alerts: tuple[int, int], people: dict[Role, Person], db_dsn: str, case: str
) -> None:
    ana, adam = people["operator"], people["admin"]
    (token,) = links(db_dsn, alerts[0], Target("email", ANA_MAIL, 0))
    kw: dict[str, Any] = {"as_": ana}
    expected = case
    if case == "expired":
        kw["now"] = datetime.now(UTC) + timedelta(hours=24, seconds=1)
    elif case == "tampered":
        token = token[:-1] + ("A" if token[-1] != "A" else "B")
        expected = "unknown"
    elif case == "garbage":
        token, expected = "../../etc/passwd", "unknown"
    elif case == "other_person":
        kw["as_"] = adam
    elif case == "other_alert":
        kw["alert_id"] = alerts[1]
    elif case == "wrong_pin":
        kw["pin"] = "000000"
    elif case == "no_pin":
        kw["pin"] = None
    with pytest.raises(AckRefusedError) as err:
        use(conn, token, **kw)
    assert err.value.reason == expected
    assert refusals(conn) == [(expected, str(err.value))]
    states = conn.execute("SELECT state FROM alerts ORDER BY alert_id").fetchall()
    assert [s["state"] for s in states] == ["open", "open"]
    if case == "other_person":
        assert str(err.value) == f"this link was sent to {ana.username}"
    # The link still works for its person afterwards (nothing was used up by the refusal).
    if expected != "unknown" and case != "expired":
        assert use(conn, token, as_=ana)["state"] == "acknowledged"


def test_wrong_pins_are_rate_limited_like_logins(
    conn: Conn, alerts: tuple[int, int], people: dict[Role, Person], db_dsn: str
) -> None:
    (token,) = links(db_dsn, alerts[0], Target("email", ANA_MAIL, 0))
    shared = limiter()
    for _ in range(3):
        with pytest.raises(AckRefusedError):
            use(conn, token, as_=people["operator"], pin="111111", limiter=shared)
    with pytest.raises(RateLimitedError):
        use(conn, token, as_=people["operator"], limiter=shared)  # even the right PIN, for now


def test_a_shared_address_s_link_takes_anyone_who_may_act_with_their_session(
    conn: Conn, alerts: tuple[int, int], callers: dict[Role, Caller], db_dsn: str
) -> None:
    (token,) = links(db_dsn, alerts[0], Target("webhook", HOOK, 0))
    with pytest.raises(PermissionDeniedError):
        use(conn, token, caller=callers["viewer"])
    row = use(conn, token, caller=callers["operator"])
    assert row["acked_by"] == callers["operator"].actor
    (entry,) = [r for r in audit_rows(conn, "alerts") if r["action"] == "update"]
    assert "via webhook link" in entry["source"]
    assert "not verified" not in entry["source"]  # the session was checked by the database


def sms_link(conn: Conn, alert_id: int, phone: str) -> str:
    code = "424242"
    conn.execute(
        ack_q.INSERT_ACK_LINK,
        {
            "token_hash": token_hash(new_token()),
            "alert_id": alert_id,
            "notification_id": None,
            "channel": "sms",
            "target": phone,
            "reply_code": code,
            "expires_at": datetime.now(UTC) + timedelta(hours=1),
        },
    )
    return code


def test_an_sms_reply_acknowledges_from_the_phone_it_was_sent_to(
    conn: Conn, alerts: tuple[int, int], people: dict[Role, Person]
) -> None:
    code = sms_link(conn, alerts[0], ANA_PHONE)
    now = datetime.now(UTC)
    for phone, body, reason in (
        ("+31687654321", f"ACK {code}", "other_phone"),
        (ANA_PHONE, "ACK 999999", "unknown"),
        (ANA_PHONE, "yes", "unknown"),
    ):
        with pytest.raises(AckRefusedError) as err:
            ack.acknowledge_by_sms(conn, from_phone=phone, body=body, now=now, client=CLIENT)
        assert err.value.reason == reason
    row = ack.acknowledge_by_sms(
        conn, from_phone=ANA_PHONE, body=f" ack {code} ", now=now, client=CLIENT
    )
    assert (row["state"], row["acked_by"]) == ("acknowledged", people["operator"].username)
    with pytest.raises(AckRefusedError, match="already used by"):
        ack.acknowledge_by_sms(
            conn, from_phone=ANA_PHONE, body=f"ACK {code}", now=now, client=CLIENT
        )
    assert [r for r, _ in refusals(conn)] == ["other_phone", "unknown", "unknown", "used"]


def test_a_pin_is_set_by_its_person_or_an_admin_and_never_audited_in_clear(
    conn: Conn,
    callers: dict[Role, Caller],
    people: dict[Role, Person],
    caller: Callable[[Role], Caller],
) -> None:
    ana = people["operator"]
    ack.set_ack_pin(conn, callers["operator"], username=ana.username, pin="123456")
    ack.set_ack_pin(conn, callers["admin"], username=ana.username, pin="654321")
    with pytest.raises(PermissionDeniedError):
        ack.set_ack_pin(conn, callers["operator"], username=people["admin"].username, pin="123456")
    with pytest.raises(WeakPasswordError, match="pin"):
        ack.set_ack_pin(conn, callers["operator"], username=ana.username, pin="12ab")
    stored = conn.execute(
        "SELECT ack_pin_hash FROM app_users WHERE username = %s", (ana.username,)
    ).fetchone()
    assert stored is not None and passwords.verify_password(stored["ack_pin_hash"], "654321")
    entries = [r for r in audit_rows(conn, "app_users") if r["action"] == "update"]
    assert [e["reason"] for e in entries] == ["acknowledgement PIN set"] * 2
    assert all(str(e["after"]["ack_pin_hash"]).startswith("redacted:") for e in entries)
