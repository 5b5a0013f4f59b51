"""services.notify: a test notification to a real webhook receiver and a real SMTP server, sent
through the delivery senders, recorded in deliveries and the audit trail; admin only; bad input
names its field."""

from __future__ import annotations

import asyncio
from email import message_from_bytes
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from coldchain.errors import InvalidRecordError, NotFoundError, PermissionDeniedError
from coldchain.settings import Settings
from db.types import Conn
from security.roles import Role
from services import notify
from services.caller import Caller
from tests.fixtures.auth import Person
from tests.fixtures.mail import Mailbox
from tests.fixtures.webhooks import SECRET, WebhookReceiver
from tests.services.conftest import SOURCE

pytestmark = pytest.mark.integration


def configured(settings: Settings, **alerts: Any) -> Settings:
    return settings.model_copy(
        update={
            "alerts": settings.alerts.model_copy(
                update={"webhook_secret": SecretStr(SECRET.decode()), **alerts}
            )
        }
    )


def test_deliveries(conn: Conn) -> list[dict[str, Any]]:
    return conn.execute(
        "SELECT alert_id, notification_id, channel, target, event, attempt, ok, response"
        " FROM deliveries ORDER BY id"
    ).fetchall()


def test_audit(conn: Conn) -> list[dict[str, Any]]:
    return conn.execute(
        "SELECT actor, actor_role, action, entity_id, after, source FROM audit_log"
        " WHERE action = 'notification_test' ORDER BY seq"
    ).fetchall()


# Not tests: helpers whose names pytest must not collect.
test_deliveries.__test__ = False  # type: ignore[attr-defined]
test_audit.__test__ = False  # type: ignore[attr-defined]


async def test_a_webhook_target_receives_the_test_and_it_is_recorded(
    conn: Conn, callers: dict[Role, Caller], settings: Settings
) -> None:
    admin = callers["admin"]
    async with WebhookReceiver() as hook:
        results = await asyncio.to_thread(
            notify.send_test,
            conn,
            admin,
            configured(settings),
            channel="webhook",
            to=hook.url,
        )
    [(headers, payload, signed)] = hook.received
    assert signed and headers["x-coldchain-event"] == "test"
    assert int(headers["x-coldchain-delivery"]) < 0  # no outbox row has it
    assert payload["event"] == "test"
    assert payload["alert"]["severity"] == "info"
    assert "no action needed" in payload["alert"]["title"]
    assert payload["test"]["asked_by"] == admin.actor
    assert payload["links"]["alert"] == f"{settings.web.base_url()}/admin"

    host = hook.url.split("/hooks")[0]
    assert [(r.channel, r.target, r.ok, r.response) for r in results] == [
        ("webhook", f"{host}/…", True, "HTTP 200 ok")
    ]
    assert test_deliveries(conn) == [
        {
            "alert_id": None,
            "notification_id": None,
            "channel": "webhook",
            "target": hook.url,
            "event": "test",
            "attempt": 1,
            "ok": True,
            "response": "HTTP 200 ok",
        }
    ]
    [entry] = test_audit(conn)
    assert (entry["actor"], entry["actor_role"], entry["entity_id"]) == (
        admin.actor,
        "admin",
        "webhook",
    )
    assert entry["after"]["target"] == f"{host}/…"  # the path (the secret) is not audited
    assert entry["after"]["ok"] is True
    assert entry["source"].startswith(SOURCE)


async def test_a_failing_target_shows_the_error_and_is_recorded_as_failed(
    conn: Conn, callers: dict[Role, Caller], settings: Settings
) -> None:
    async with WebhookReceiver(fail_first=1) as hook:
        [result] = await asyncio.to_thread(
            notify.send_test,
            conn,
            callers["admin"],
            configured(settings),
            channel="webhook",
            to=hook.url,
        )
    assert (result.ok, result.response) == (False, "HTTP 503 ok")  # not retried
    assert hook.requests == 1
    assert [(d["ok"], d["response"]) for d in test_deliveries(conn)] == [(False, "HTTP 503 ok")]
    assert test_audit(conn)[0]["after"]["ok"] is False


def test_a_person_is_reached_at_their_address_and_a_missing_channel_is_said(
    conn: Conn,
    callers: dict[Role, Caller],
    people: dict[Role, Person],
    settings: Settings,
    smtp: tuple[Mailbox, int],
) -> None:
    box, port = smtp
    qa = people["qa"]
    conn.execute(
        "UPDATE app_users SET email = %s, phone = %s WHERE username = %s",
        ("qa.person@example.com", "+41791234567", qa.username),
    )
    results = notify.send_test(
        conn,
        callers["admin"],
        configured(settings, smtp_host="127.0.0.1", smtp_port=port),
        person=qa.username,
    )
    assert [(r.channel, r.target, r.ok, r.person) for r in results] == [
        ("email", "qa.person@example.com", True, qa.username),
        ("sms", "+41791234567", False, qa.username),
    ]
    assert results[1].response == "no sms sender configured"
    [(_sender, rcpt, raw)] = box.messages
    assert rcpt == ["qa.person@example.com"]
    assert "test" in message_from_bytes(raw)["Subject"]
    assert [(d["channel"], d["ok"]) for d in test_deliveries(conn)] == [
        ("email", True),
        ("sms", False),
    ]


@pytest.mark.parametrize("role", ["viewer", "operator", "qa"])
def test_only_administrators_may_send_a_test(
    conn: Conn, callers: dict[Role, Caller], settings: Settings, role: Role
) -> None:
    with pytest.raises(PermissionDeniedError, match="'admin' permission"):
        notify.send_test(
            conn, callers[role], settings, channel="webhook", to="http://127.0.0.1:9/x"
        )
    with pytest.raises(PermissionDeniedError):
        notify.people(conn, callers[role])
    assert test_deliveries(conn) == [] and test_audit(conn) == []


@pytest.mark.parametrize(
    ("ask", "error", "field"),
    [
        ({"channel": "pigeon", "to": "x"}, InvalidRecordError, "channel"),
        ({"channel": "webhook", "to": "ftp://x.example/h"}, InvalidRecordError, "to"),
        ({"channel": "sms", "to": "0791234567"}, InvalidRecordError, "to"),
        ({"channel": "email", "to": "nobody"}, InvalidRecordError, "to"),
        ({"channel": "webhook"}, InvalidRecordError, "to"),
        ({}, InvalidRecordError, "to"),
        ({"person": "nobody-here"}, NotFoundError, None),
        ({"person": "viewer"}, InvalidRecordError, "person"),  # no e-mail, no phone
    ],
)
def test_bad_input_is_refused_naming_the_field_and_nothing_is_sent(
    conn: Conn,
    callers: dict[Role, Caller],
    people: dict[Role, Person],
    settings: Settings,
    ask: dict[str, str],
    error: type[Exception],
    field: str | None,
) -> None:
    if ask.get("person") == "viewer":
        ask = {"person": people["viewer"].username}
    with pytest.raises(error) as raised:
        notify.send_test(conn, callers["admin"], settings, **ask)
    if field is not None:
        assert getattr(raised.value, "field", None) == field
    assert test_deliveries(conn) == []


def test_the_configured_targets_come_from_the_settings_and_the_rules_file(
    settings: Settings, tmp_path: Path
) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text(
        """
[[escalation.tiers]]
name = "on call"
webhooks = ["https://hooks.example/T0/secret-path", "https://a.example/shared"]
emails = ["oncall@example.com"]

[[escalation.tiers]]
name = "QA lead"
after_min = 30
emails = ["qa.lead@example.com"]
"""
    )
    s = configured(
        settings,
        webhook_urls=["https://a.example/shared"],
        smtp_to=["ops@example.com"],
        rules_file=rules,
    )
    assert [(t.channel, t.shown, t.where) for t in notify.configured_targets(s)] == [
        ("webhook", "https://a.example/…", "settings"),
        ("email", "ops@example.com", "settings"),
        ("webhook", "https://hooks.example/…", "tier 0 (on call)"),
        ("email", "oncall@example.com", "tier 0 (on call)"),
        ("email", "qa.lead@example.com", "tier 1 (QA lead)"),
    ]


def test_redaction_keeps_secrets_out() -> None:
    assert notify.redact("slack", "https://hooks.slack.com/services/T/B/xyz") == (
        "https://hooks.slack.com/…"
    )
    assert notify.redact("pagerduty", "R0UT1NGKEY123") == "R0UT…"
    assert notify.redact("sms", "+41791234567") == "+41791234567"
