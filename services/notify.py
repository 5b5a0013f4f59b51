""" "Send a test notification": to one channel target, or to a person's contacts, now.

An on-call set-up nobody has tried fails on the night it is needed. An administrator (the
``admin`` permission) can send a test message through the same senders the delivery worker uses
(the sender registry, :data:`senders_from_settings`), to a target of a channel (a webhook URL, an
e-mail address, a Slack or Teams webhook, a PagerDuty routing key, an Opsgenie key, a phone
number) or to a person (their ``app_users`` e-mail and phone), and sees at once what happened:
delivered, with the receiver's answer, or the error. The API (``POST
/api/v1/notifications/test``), the dashboard's admin page and ``coldchain notify test`` call
:func:`send_test`; the admin page lists the targets with :func:`configured_targets`.

The message is an alert notification's document (:func:`alerts.delivery.alert_payload`, event
``test``, severity ``info``, the title saying no action is needed), so every channel renders it as
it renders a real alert. It goes out directly, not through the outbox (a test is not retried: its
point is to show the error), with ``X-Coldchain-Delivery`` set to a negative number (no outbox
row has it). Each attempt is one ``deliveries`` row (event ``test``, no alert) and one audit
entry (action ``notification_test``, the caller as actor, the target redacted).

Secrets: webhook URLs (their path is the credential), routing and API keys are shown and audited
redacted (:func:`redact`); the target is kept whole only in ``deliveries``, as for every alert.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx

from alerts.channels import Outgoing, Sender, senders_from_settings
from alerts.delivery import alert_payload
from alerts.rules import EscalationPolicy, load_rules_file
from coldchain.errors import ConfigError, DeliveryError, InvalidRecordError, NotFoundError
from coldchain.settings import Settings
from db.queries import notify as q
from db.queries import security as security_q
from db.types import Conn
from services.caller import Caller

#: notifications.channel values (issue 16's agreed names).
CHANNELS = ("webhook", "email", "slack", "teams", "pagerduty", "opsgenie", "sms")
#: The rules file's key for each channel in an escalation tier.
TIER_KEYS = {
    "webhook": "webhooks",
    "email": "emails",
    "slack": "slack",
    "teams": "teams",
    "pagerduty": "pagerduty",
    "opsgenie": "opsgenie",
    "sms": "sms",
}
_URL = re.compile(r"^https?://[^/\s]+\S*$")
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,255}$")
_PHONE = re.compile(r"^\+[1-9][0-9]{6,14}$")
_KEY = re.compile(r"^\S{1,200}$")


@dataclass(frozen=True, slots=True)
class Target:
    """Where a test can go: a channel, its target, and where it is configured."""

    channel: str
    target: str
    where: str  # "settings", "tier 0 (on call)", "person alice"

    @property
    def shown(self) -> str:
        return redact(self.channel, self.target)


@dataclass(frozen=True, slots=True)
class TestResult:
    """What one test attempt gave: delivered (with the receiver's answer) or the error."""

    channel: str
    target: str  # redacted
    ok: bool
    response: str
    person: str | None = None


def redact(channel: str, target: str) -> str:
    """The target as people and the audit trail see it: a URL's scheme and host (its path is
    the credential), a key's first four characters; addresses and numbers whole."""
    if channel in ("webhook", "slack", "teams"):
        url = httpx.URL(target)
        port = f":{url.port}" if url.port else ""
        return f"{url.scheme}://{url.host}{port}{'/…' if url.path not in ('', '/') else ''}"
    if channel in ("pagerduty", "opsgenie"):
        return f"{target[:4]}…"
    return target


def check_target(channel: str, target: str) -> None:
    """InvalidRecordError (naming ``channel`` or ``to``) unless the target fits its channel."""
    if channel not in CHANNELS:
        raise InvalidRecordError("channel", f"must be one of {', '.join(CHANNELS)}")
    pattern, what = {
        "webhook": (_URL, "an http:// or https:// URL"),
        "slack": (_URL, "an http:// or https:// URL"),
        "teams": (_URL, "an http:// or https:// URL"),
        "email": (_EMAIL, "an e-mail address"),
        "sms": (_PHONE, "a phone number in E.164 form (+41791234567)"),
        "pagerduty": (_KEY, "a routing key"),
        "opsgenie": (_KEY, "an API key name or responder"),
    }[channel]
    if not pattern.match(target):
        raise InvalidRecordError("to", f"a {channel} target must be {what}")


def configured_targets(settings: Settings) -> list[Target]:
    """Every channel target the settings and the rules file's escalation tiers name (a rules
    file that does not load is skipped: the engine reports it)."""
    a = settings.alerts
    found = [Target("webhook", u, "settings") for u in a.webhook_urls]
    found += [Target("email", m, "settings") for m in a.smtp_to]
    policy = EscalationPolicy()
    if a.rules_file is not None:
        with contextlib.suppress(ConfigError):  # the engine reports a bad file
            policy = load_rules_file(a.rules_file).escalation or EscalationPolicy()
    for k, tier in enumerate(policy.tiers):
        for channel in CHANNELS:
            # The channels' lists as the rules file names them (some arrive with issue 16 a).
            for target in getattr(tier, TIER_KEYS[channel], None) or []:
                found.append(Target(channel, str(target), f"tier {k} ({tier.name})"))
    unique: dict[tuple[str, str], Target] = {}
    for t in found:
        unique.setdefault((t.channel, t.target), t)  # the first place it is configured
    return list(unique.values())


def person_targets(conn: Conn, caller: Caller, username: str) -> list[Target]:
    """A person's contacts as targets (e-mail, then phone); NotFoundError for no such person."""
    caller.require("admin")
    rows = q.people_contacts(conn=conn, username=username)
    if not rows:
        raise NotFoundError(f"no active person {username!r}")
    return list(_contacts(rows[0]))


def people(conn: Conn, caller: Caller) -> list[dict[str, object]]:
    """Active people with their contacts (the admin page's test buttons)."""
    caller.require("admin")
    return [dict(r) for r in q.people_contacts(conn=conn)]


def send_test(
    conn: Conn,
    caller: Caller,
    settings: Settings,
    *,
    channel: str | None = None,
    to: str | None = None,
    person: str | None = None,
) -> list[TestResult]:
    """Send a test now to ``to`` on ``channel``, or to each contact of ``person``; record and
    return each result. Admin only; a bad channel or target is InvalidRecordError naming it."""
    caller.require("admin")
    if (person is None) == (channel is None or to is None):
        raise InvalidRecordError("to", "give a channel and a target, or a person")
    if person is not None:
        targets = person_targets(conn, caller, person)
        if not targets:
            raise InvalidRecordError("person", f"{person} has no e-mail address or phone number")
    else:
        assert channel is not None and to is not None
        to = to.strip()
        check_target(channel, to)
        targets = [Target(channel, to, "asked")]
    now = datetime.now(UTC)
    payload = test_payload(caller, settings, now)
    outcomes = asyncio.run(_send_all(settings, targets, payload))
    results = []
    for target, (ok, response, duration_ms) in zip(targets, outcomes, strict=True):
        q.record_test_delivery(
            conn=conn,
            channel=target.channel,
            target=target.target,
            ok=ok,
            response=response[:2000],
            duration_ms=duration_ms,
        )
        security_q.append_audit(
            conn=conn,
            actor=caller.actor,
            actor_role=caller.role,
            action="notification_test",
            entity="notifications",
            entity_id=target.channel,
            after={
                "channel": target.channel,
                "target": target.shown,
                "person": person,
                "ok": ok,
                "response": response[:200],
            },
            source=caller.source,
        )
        results.append(TestResult(target.channel, target.shown, ok, response, person))
    return results


def test_payload(caller: Caller, settings: Settings, now: datetime) -> dict[str, object]:
    """The test message: an alert notification's document that says it is a test."""
    alert = {
        "alert_id": 0,
        "shipment_id": None,
        "reference": "TEST",
        "rule_key": "test",
        "severity": "info",
        "state": "open",
        "title": f"Test notification from coldchain, asked by {caller.display_name}: "
        "no action needed",
        "triggered_at": now,
    }
    links = {"alert": f"{settings.web.base_url()}/admin"}
    extra = {"test": {"asked_by": caller.actor, "at": now}, "links": links}
    return alert_payload("test", alert, tier=0, extra=extra)


async def _send_all(
    settings: Settings, targets: list[Target], payload: Mapping[str, object]
) -> list[tuple[bool, str, float]]:
    async with httpx.AsyncClient(timeout=settings.alerts.webhook_timeout_s) as client:
        senders = senders_from_settings(settings.alerts, client)
        return list(
            await asyncio.gather(
                *(_send_one(senders, t, payload, n) for n, t in enumerate(targets))
            )
        )


async def _send_one(
    senders: Mapping[str, Sender], target: Target, payload: Mapping[str, object], n: int
) -> tuple[bool, str, float]:
    started = time.perf_counter()
    sender = senders.get(target.channel)
    # Negative: no outbox row has this id; unique per test (milliseconds) for receivers that
    # de-duplicate on X-Coldchain-Delivery.
    item = Outgoing(
        notification_id=-(int(time.time() * 1000) * 10 + n),
        alert_id=None,
        event="test",
        tier=0,
        channel=target.channel,
        target=target.target,
        payload=payload,
        attempt=1,
    )
    try:
        if sender is None:
            raise DeliveryError(f"no {target.channel} sender configured")
        response = await sender.send(item)
        ok = True
    except DeliveryError as exc:
        response, ok = str(exc), False
    return ok, response, (time.perf_counter() - started) * 1000


def _contacts(row: Mapping[str, object]) -> Iterator[Target]:
    where = f"person {row['username']}"
    if row.get("email"):
        yield Target("email", str(row["email"]), where)
    if row.get("phone"):
        yield Target("sms", str(row["phone"]), where)
