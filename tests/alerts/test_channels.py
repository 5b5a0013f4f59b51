"""The channels (alerts/channels/): each message as its service's API takes it, for an alert
event and a digest; each sender against a local server that speaks that API (request shape,
auth header, dedup key), its answers judged (Retry-After, permanent 4xx), secrets scrubbed."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from alerts.channels import CHANNELS, Outgoing, display_target, senders_from_settings
from alerts.channels.base import retry_after_s, scrub
from alerts.channels.email import email_message
from alerts.channels.opsgenie import opsgenie_request, priority
from alerts.channels.pagerduty import event_action, pagerduty_event
from alerts.channels.slack import slack_message
from alerts.channels.sms import sms_text
from alerts.channels.teams import ADAPTIVE_CARD, teams_message
from alerts.delivery import alert_payload, retry_wait
from alerts.escalation import Target, shown_policy, targets
from alerts.rules import EscalationPolicy, EscalationTier, parse_escalation
from coldchain.errors import ConfigError, DeliveryError
from coldchain.settings import AlertsSettings
from tests.fixtures import channel_servers as cs

ALERT = {
    "alert_id": 41,
    "shipment_id": 3,
    "reference": "SHP-41",
    "rule_key": "temp_high",
    "severity": "critical",
    "state": "open",
    "title": "Temperature above range: 12.0 °C, limit 8 °C",
    "device_id": "LOG-1",
    "triggered_at": datetime(2026, 1, 1, tzinfo=UTC),
    "value": 12.0,
    "thresholds": {"high_c": 8.0},
    "escalation_level": 0,
}
LINKS = {
    "alert": "https://cc.example.com/alerts?alert=41",
    "ack": "https://cc.example.com/ack/one-time-token",
}


def payload(event: str = "opened", **extra: Any) -> dict[str, Any]:
    return alert_payload(event, ALERT, tier=0, extra=extra)


def digest(n: int = 3, held_back: int = 7) -> dict[str, Any]:
    alerts = [
        payload(extra={})["alert"] | {"id": 100 + i, "severity": ("warning", "major")[i % 2]}
        for i in range(n)
    ]
    return {
        "event": "digest",
        "tier": 0,
        "reason": "flood",
        "shipment_reference": "SHP-41",
        "alerts": alerts,
        "held_back": held_back,
        "links": {"alerts": "https://cc.example.com/alerts?shipment=SHP-41"},
    }


# ---- messages -------------------------------------------------------------------------------


def test_slack_message_has_the_headline_facts_and_link_buttons() -> None:
    msg = slack_message(payload(links=LINKS))
    assert msg["text"] == f"[CRITICAL] opened: {ALERT['title']} (SHP-41)"
    buttons = msg["blocks"][-1]["elements"]
    assert [(b["text"]["text"], b["url"]) for b in buttons] == [
        ("Open alert", LINKS["alert"]),
        ("Acknowledge", LINKS["ack"]),
    ]
    assert all(b["type"] != "actions" for b in slack_message(payload())["blocks"])


def test_teams_message_is_one_adaptive_card_attachment() -> None:
    msg = teams_message(payload(links=LINKS))
    (attachment,) = msg["attachments"]
    assert msg["type"] == "message" and attachment["contentType"] == ADAPTIVE_CARD
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.4"
    facts = {f["title"]: f["value"] for f in card["body"][1]["facts"]}
    assert facts["Shipment"] == "SHP-41" and facts["Severity"] == "critical"
    assert [a["url"] for a in card["actions"]] == [LINKS["alert"], LINKS["ack"]]


@pytest.mark.parametrize(
    ("event", "action"),
    [
        ("opened", "trigger"),
        ("reopened", "trigger"),
        ("upgraded", "trigger"),
        ("escalated", "trigger"),
        ("acknowledged", "acknowledge"),
        ("cleared", "resolve"),
        ("resolved", "resolve"),
    ],
)
def test_pagerduty_follows_the_alert_under_one_dedup_key(event: str, action: str) -> None:
    doc = pagerduty_event(payload(event, links=LINKS), routing_key=cs.ROUTING_KEY)
    assert event_action(event) == action
    assert (doc["event_action"], doc["dedup_key"]) == (action, "coldchain-alert-41")
    assert doc["routing_key"] == cs.ROUTING_KEY
    if action == "trigger":
        assert doc["payload"]["severity"] == "critical" and doc["payload"]["source"] == "LOG-1"
        assert doc["payload"]["summary"].startswith("[CRITICAL]")
        assert [link["href"] for link in doc["links"]] == [LINKS["alert"], LINKS["ack"]]
    else:
        assert "payload" not in doc


@pytest.mark.parametrize(
    ("severity", "pd", "og"),
    [("critical", "critical", "P1"), ("major", "error", "P2"), ("warning", "warning", "P3"),
     ("info", "info", "P5")],
)  # fmt: skip
def test_severities_map_to_pagerduty_and_opsgenie(severity: str, pd: str, og: str) -> None:
    p = alert_payload("opened", ALERT | {"severity": severity}, tier=0)
    assert pagerduty_event(p, routing_key="k")["payload"]["severity"] == pd
    assert priority(p) == og


def test_opsgenie_creates_then_acknowledges_and_closes_by_alias() -> None:
    path, body = opsgenie_request(payload(links=LINKS))
    assert path == "/v2/alerts" and body["alias"] == "coldchain-alert-41"
    assert len(body["message"]) <= 130 and body["priority"] == "P1"
    assert all(isinstance(v, str) for v in body["details"].values())
    assert LINKS["ack"] not in json.dumps(body)  # the team sees descriptions; no one-time link
    ack_path, ack = opsgenie_request(payload("acknowledged", acknowledged_by="ana.ruiz"))
    assert ack_path == "/v2/alerts/coldchain-alert-41/acknowledge?identifierType=alias"
    assert ack["user"] == "ana.ruiz"
    assert opsgenie_request(payload("cleared"))[0].endswith("/close?identifierType=alias")


def test_an_sms_fits_with_the_link_and_the_reply_code() -> None:
    long = alert_payload("opened", ALERT | {"title": "x" * 600}, tier=0, extra={"links": LINKS})
    text = sms_text(long | {"reply_code": "123456"})
    assert len(text) <= 320
    assert text.startswith("coldchain CRITICAL opened (SHP-41): xxx")
    assert text.endswith(f"{LINKS['alert']} Reply ACK 123456 to acknowledge")
    assert LINKS["ack"] not in text  # the reply code is the SMS's acknowledgement
    assert (
        sms_text(payload(), max_chars=160)
        == f"coldchain CRITICAL opened (SHP-41): {ALERT['title']}"
    )


def test_every_channel_renders_a_digest_with_what_was_held_back() -> None:
    d = digest()
    head = "3 alerts for SHP-41, 7 more held back by the notification limit"
    assert slack_message(d)["text"] == head
    assert "7 more held back" in slack_message(d)["blocks"][1]["text"]["text"]
    card = teams_message(d)["attachments"][0]["content"]
    assert card["body"][0]["text"] == head and card["actions"][0]["url"] == d["links"]["alerts"]
    doc = pagerduty_event(d, routing_key="k")
    assert doc["dedup_key"] == "coldchain-digest-100-3" and doc["payload"]["severity"] == "error"
    assert opsgenie_request(d)[1]["priority"] == "P2"
    assert sms_text(d) == f"coldchain: {head} {d['links']['alerts']}"
    mail = email_message(d, sender="cc@example.com", recipient="qa@example.com")
    assert mail["Subject"] == f"[coldchain] {head}"
    body = mail.get_content()
    assert "#100 [WARNING]" in body and "#102 [WARNING]" in body and "7 more held back" in body


def test_an_acknowledgement_says_who() -> None:
    p = payload("acknowledged", acknowledged_by="ana.ruiz", comment="door closed")
    assert slack_message(p)["text"].endswith("(SHP-41) by ana.ruiz")
    assert (
        "By ana.ruiz: door closed"
        in email_message(p, sender="a@b.c", recipient="d@e.f").get_content()
    )


# ---- retries and secrets (pure) ------------------------------------------------------------

NOW = 1_700_000_000.0


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("120", 120.0),
        (format_datetime(datetime.fromtimestamp(NOW + 30, UTC), usegmt=True), 30.0),
        (format_datetime(datetime.fromtimestamp(NOW - 30, UTC), usegmt=True), 0.0),
        ("soon", None),
        (None, None),
    ],
)
def test_retry_after_is_seconds_or_an_http_date(header: str | None, expected: float | None) -> None:
    assert retry_after_s(header, now=NOW) == expected


@pytest.mark.parametrize(
    ("attempt", "retry_after", "expected"),
    [(1, None, 5), (1, 60, 60), (4, 10, 40), (1, 86400, 900)],  # the cap wins over a day
)
def test_the_wait_is_the_longer_of_backoff_and_retry_after_capped(
    attempt: int, retry_after: float | None, expected: float
) -> None:
    wait = retry_wait(attempt, retry_after, base_s=5, cap_s=900)
    assert wait == timedelta(seconds=expected)


def test_secrets_are_scrubbed_in_every_form_a_receiver_may_echo() -> None:
    url = "https://x.webhook.office.com/workflows/abc?sp=%2Ftriggers&sig=S1GNATURE"
    echoed = f"bad request to {url}; path /workflows/abc; sig S1GNATURE; key K3YK3YK3Y"
    text = scrub(echoed, [url, "K3YK3YK3Y"])
    assert all(s not in text for s in ("S1GNATURE", "/workflows/abc", "K3YK3YK3Y")), text


def test_targets_are_shown_with_secrets_masked() -> None:
    assert display_target("slack", "https://hooks.slack.com/services/T0/B0/XYZ") == (
        "https://hooks.slack.com/…"
    )
    assert display_target("pagerduty", cs.ROUTING_KEY) == "…CDEF"
    assert display_target("sms", "+447700900123") == "+447700900123"


# ---- the tiers ------------------------------------------------------------------------------

TIER = {
    "name": "on call",
    "severities": ["critical"],
    "slack": ["https://hooks.slack.com/services/T0/B0/XYZ"],
    "pagerduty": [cs.ROUTING_KEY],
    "opsgenie": ["quality"],
    "sms": ["+447700900123"],
    "teams": ["https://example.webhook.office.com/workflows/abc?sig=SECRET"],
}


def test_a_tier_hears_only_its_severities_on_every_channel() -> None:
    policy = EscalationPolicy(tiers=[EscalationTier(name="all", emails=["t@example.com"]),
                                     EscalationTier.model_validate(TIER)])  # fmt: skip
    assert [t.channel for t in targets(policy, range(2), severity="critical")] == [
        "email", "slack", "teams", "pagerduty", "opsgenie", "sms",
    ]  # fmt: skip
    assert targets(policy, range(2), severity="major") == [Target("email", "t@example.com", 0)]
    assert {t.channel for t in targets(policy, range(2))} <= set(CHANNELS)


def test_a_shown_policy_masks_secrets_and_cannot_be_stored_back() -> None:
    shown = shown_policy(EscalationPolicy(tiers=[EscalationTier.model_validate(TIER)]))
    text = json.dumps(shown)
    assert cs.ROUTING_KEY not in text and "XYZ" not in text and "SECRET" not in text
    assert shown["tiers"][0]["sms"] == ["+447700900123"]  # not a secret
    with pytest.raises(ConfigError, match=r"tiers\[0\]\.slack: .* is masked"):
        parse_escalation(shown, source="body")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"pagerduty": ["too-short"]}, r"tiers\[0\]\.pagerduty\[0\]"),
        ({"sms": ["07700 900123"]}, r"tiers\[0\]\.sms\[0\]"),
        ({"severities": ["urgent"]}, r"tiers\[0\]\.severities\[0\]"),
        ({"slak": []}, r"tiers\[0\]\.slak"),
        ({"severities": []}, r"tiers\[0\]\.severities: .*at least 1"),
    ],
)
def test_a_bad_tier_is_refused_naming_the_field(change: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError, match=rf"body: {field}"):
        parse_escalation({"tiers": [{"name": "t", **change}]}, source="body")


# ---- the senders against local servers -----------------------------------------------------


def settings_for(server: cs.ChannelServer) -> AlertsSettings:
    return AlertsSettings(
        pagerduty_url=f"{server.base}/v2/enqueue",
        opsgenie_url=server.base,
        opsgenie_api_keys={"quality": SecretStr(cs.GENIE_KEY), "wrong": SecretStr("bad-key")},
        sms_gateway_url=server.base,
        sms_account_sid=cs.TWILIO_SID,
        sms_auth_token=SecretStr(cs.TWILIO_TOKEN),
        sms_from="+15005550006",
    )


def item(channel: str, target: str, p: dict[str, Any]) -> Outgoing:
    return Outgoing(1, 41, str(p["event"]), 0, channel, target, p, 1)


async def send(server: cs.ChannelServer, channel: str, target: str, p: dict[str, Any]) -> str:
    async with httpx.AsyncClient(timeout=5) as client:
        sender = senders_from_settings(settings_for(server), client)[channel]
        return await sender.send(item(channel, target, p))


def _check_pagerduty(r: cs.Request, base: str) -> None:
    assert (r.method, r.path) == ("POST", "/v2/enqueue")
    assert r.headers["content-type"] == "application/json"
    event = r.json()
    assert (event["routing_key"], event["dedup_key"]) == (cs.ROUTING_KEY, "coldchain-alert-41")


def _check_opsgenie(r: cs.Request, base: str) -> None:
    assert (r.method, r.path) == ("POST", "/v2/alerts")
    assert r.headers["authorization"] == f"GenieKey {cs.GENIE_KEY}"
    assert r.json()["alias"] == "coldchain-alert-41"


def _check_sms(r: cs.Request, base: str) -> None:
    assert r.path == f"/2010-04-01/Accounts/{cs.TWILIO_SID}/Messages.json"
    assert r.headers["content-type"] == "application/x-www-form-urlencoded"
    token = base64.b64encode(f"{cs.TWILIO_SID}:{cs.TWILIO_TOKEN}".encode()).decode()
    assert r.headers["authorization"] == f"Basic {token}"
    form = r.form()
    assert (form["To"], form["From"]) == ("+447700900123", "+15005550006")
    assert form["Body"].endswith("Reply ACK 654321 to acknowledge")


def _check_slack(r: cs.Request, base: str) -> None:
    assert (r.method, r.path) == ("POST", "/services/T0/B0/XYZ")
    assert r.json()["blocks"][-1]["type"] == "actions"


def _check_teams(r: cs.Request, base: str) -> None:
    assert r.path == "/workflows/abc" and r.query == {"sig": ["SECRET"]}
    assert r.json()["attachments"][0]["contentType"] == ADAPTIVE_CARD


CASES: list[tuple[str, Callable[[cs.Request], cs.Answer], str, Callable[..., None], str]] = [
    ("pagerduty", cs.pagerduty, cs.ROUTING_KEY, _check_pagerduty, "HTTP 202"),
    ("opsgenie", cs.opsgenie, "quality", _check_opsgenie, "HTTP 202"),
    ("sms", cs.twilio, "+447700900123", _check_sms, "HTTP 201"),
    ("slack", cs.slack, "{base}/services/T0/B0/XYZ", _check_slack, "HTTP 200 ok"),
    ("teams", cs.teams, "{base}/workflows/abc?sig=SECRET", _check_teams, "HTTP 202"),
]


@pytest.mark.parametrize(("channel", "check", "target", "verify", "answer"), CASES)
async def test_each_sender_speaks_its_api(
    channel: str,
    check: Callable[[cs.Request], cs.Answer],
    target: str,
    verify: Callable[..., None],
    answer: str,
) -> None:
    async with cs.ChannelServer(check) as server:
        p = payload(links=LINKS) | {"reply_code": "654321"}
        summary = await send(server, channel, target.format(base=server.base), p)
        assert summary.startswith(answer), summary
        (request,) = server.requests
        assert request.headers["user-agent"].startswith("coldchain-alerts/")
        verify(request, server.base)


@pytest.mark.parametrize(
    ("script", "retry_after"),
    [
        ([(429, {"Retry-After": "7"}, "slow down")], 7.0),
        ([(503, {"Retry-After": "Wed, 21 Oct 2099 07:28:00 GMT"}, "")], "date"),
        ([(500, {}, "oops")], None),
        ([(408, {}, "")], None),
    ],
)
async def test_429_and_5xx_are_retried_after_what_the_receiver_said(
    script: list[cs.Answer], retry_after: float | str | None
) -> None:
    async with cs.ChannelServer(cs.pagerduty, script=list(script)) as server:
        with pytest.raises(DeliveryError) as caught:
            await send(server, "pagerduty", cs.ROUTING_KEY, payload())
        err = caught.value
        assert not err.permanent
        if retry_after == "date":
            assert err.retry_after_s is not None and err.retry_after_s > 86400
        else:
            assert err.retry_after_s == retry_after
        assert await send(server, "pagerduty", cs.ROUTING_KEY, payload())  # then it passes


@pytest.mark.parametrize(
    ("channel", "check", "target", "secret"),
    [
        ("pagerduty", cs.pagerduty, "0" * 32, "0" * 32),  # a routing key PagerDuty refuses
        ("opsgenie", cs.opsgenie, "wrong", "bad-key"),
        ("sms", cs.twilio, "+1", cs.TWILIO_TOKEN),
        ("slack", cs.slack, "{base}/services/T0/B0/XYZ/gone", "/services/T0/B0/XYZ/gone"),
    ],
)
async def test_a_refusal_is_permanent_and_keeps_the_secret_out(
    channel: str, check: Callable[[cs.Request], cs.Answer], target: str, secret: str
) -> None:
    async with cs.ChannelServer(check) as server:
        with pytest.raises(DeliveryError) as caught:
            await send(server, channel, target.format(base=server.base), payload())
    assert caught.value.permanent and caught.value.retry_after_s is None
    assert "HTTP 4" in str(caught.value) and "not retried" in str(caught.value)
    assert secret not in str(caught.value)
    assert server.requests  # it was really asked


async def test_a_key_name_not_in_the_settings_is_a_permanent_failure_naming_it() -> None:
    async with cs.ChannelServer(cs.opsgenie) as server:
        with pytest.raises(DeliveryError, match="no Opsgenie API key named 'ops'") as caught:
            await send(server, "opsgenie", "ops", payload())
    assert caught.value.permanent and not server.requests


def test_channels_without_their_settings_are_not_configured() -> None:
    async def names() -> set[str]:
        async with httpx.AsyncClient() as client:
            return set(senders_from_settings(AlertsSettings(), client))

    assert asyncio.run(names()) == {"webhook", "slack", "teams", "pagerduty"}


def test_the_commands_keep_httpx_from_logging_webhook_urls(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from launcher.cli.common import load_settings

    monkeypatch.setattr(logging.getLogger("httpx"), "level", logging.NOTSET)
    load_settings()
    assert not logging.getLogger("httpx").isEnabledFor(logging.INFO)


def test_a_note_that_is_no_alert_renders_on_every_channel() -> None:
    note = {"event": "test", "tier": 0, "title": "Test notification (ada.admin)"}
    head = "coldchain: Test notification (ada.admin)"
    assert slack_message(note)["text"] == head
    assert teams_message(note)["attachments"][0]["content"]["body"][0]["text"] == head
    doc = pagerduty_event(note, routing_key="k")
    assert (doc["event_action"], doc["dedup_key"]) == ("trigger", "coldchain-test")
    assert doc["payload"]["summary"] == head
    assert opsgenie_request(note)[1]["message"] == head
    assert sms_text(note) == head
    assert (
        email_message(note, sender="a@b.c", recipient="d@e.f")["Subject"] == f"[coldchain] {head}"
    )


async def test_opsgenie_acknowledges_and_closes_by_alias_on_the_server() -> None:
    async with cs.ChannelServer(cs.opsgenie) as server:
        for event, extra in (
            ("opened", {}),
            ("acknowledged", {"acknowledged_by": "ana.ruiz"}),
            ("cleared", {}),
        ):
            assert (await send(server, "opsgenie", "quality", payload(event, **extra))).startswith(
                "HTTP 202"
            )
    assert [(r.path, r.query.get("identifierType")) for r in server.requests] == [
        ("/v2/alerts", None),
        ("/v2/alerts/coldchain-alert-41/acknowledge", ["alias"]),
        ("/v2/alerts/coldchain-alert-41/close", ["alias"]),
    ]
    assert server.requests[1].json()["user"] == "ana.ruiz"
    assert all(r.headers["authorization"] == f"GenieKey {cs.GENIE_KEY}" for r in server.requests)
