"""Issue 16's on-call story end to end, on the real database and the real rules engine, outbox
and channel senders, against local servers that speak Slack's, PagerDuty's, Twilio's and SMTP's
protocols: an excursion opens an alert → Slack, a PagerDuty trigger (its first answer a 429
with Retry-After, honoured) and an SMS with a reply code and a one-time link to the person on
call in the tower's rotation → reminders every 5 minutes (``[escalation.reminders]``) → QA's
person on call by SMS and e-mail after 15 minutes → the tower's person acknowledges by replying
to the SMS → nothing more is sent, PagerDuty hears "acknowledge" → the excursion ends → PagerDuty
hears "resolve", all under one dedup key. The engine's clock is injected (no waiting minutes);
what the servers *received* is asserted, not only the outbox's rows.

Also: the README's On-call rules file and rules/example.toml stay valid rules files.
"""

from __future__ import annotations

import asyncio
import base64
import re
import time
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import httpx
import psycopg
import pytest
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool

from alerts.channels import senders_from_settings
from alerts.delivery import DeliveryWorker
from alerts.rounds import RulesEngine
from alerts.rules import load_rules_file, rules_from_text
from coldchain.settings import AlertsSettings, Settings, WebSettings
from coldchain.telemetry import Reading
from ingest.sink import Batch, TimescaleSink
from services import ack, oncall
from services.caller import Caller
from tests.alerts.test_delivery import pool, rows  # noqa: F401  # pool: a fixture
from tests.fixtures import channel_servers as cs
from tests.fixtures.auth import Person
from tests.fixtures.data import seed_shipment
from tests.fixtures.mail import Mailbox

ROOT = Path(__file__).resolve().parents[2]
PUBLIC = "https://cold.example"
ANA_PHONE = "+31612345678"
QUINN_PHONE = "+41791234567"
QUINN_MAIL = "quinn@example.com"
SMS_FROM = "+15005550006"
REPLY = re.compile(r"Reply ACK (\d{6}) to acknowledge")

RULES = """
[[escalation.tiers]]
name = "Control tower"
rotation = "cold-chain-tower"
via = ["sms"]
slack = ["{slack}/services/T000/B000/XXXXXXXX"]
pagerduty = ["{routing_key}"]

[[escalation.tiers]]
name = "QA on call"
after_min = 15
rotation = "qa-oncall"
via = ["sms", "email"]

[escalation.reminders]
major = 5
critical = 2
"""


class Clock:
    """The engine's clock: the real time at the start (ack links expire in real time), moved
    on by hand."""

    def __init__(self) -> None:
        self.start = datetime.now(UTC)
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return self.start + self.offset

    def at(self, minutes: float) -> None:
        self.offset = timedelta(minutes=minutes)


class Timed:
    """PagerDuty's judgement, with each request's arrival time; the first answered 429."""

    def __init__(self, retry_after_s: int) -> None:
        self.at: list[float] = []
        self._retry_after = retry_after_s

    def __call__(self, request: cs.Request) -> cs.Answer:
        self.at.append(time.monotonic())
        if len(self.at) == 1:
            return 429, {"Retry-After": str(self._retry_after)}, '{"status":"throttled"}'
        return cs.pagerduty(request)


def story_settings(
    settings: Settings, *, pd: cs.ChannelServer, twilio: cs.ChannelServer, smtp_port: int
) -> Settings:
    alerts = AlertsSettings.model_validate(
        {
            **settings.alerts.model_dump(),
            "pagerduty_url": f"{pd.base}/v2/enqueue",
            "sms_gateway_url": twilio.base,
            "sms_account_sid": cs.TWILIO_SID,
            "sms_auth_token": cs.TWILIO_TOKEN,
            "sms_from": SMS_FROM,
            "smtp_host": "127.0.0.1",
            "smtp_port": smtp_port,
            "smtp_from": "coldchain@example.com",
            "delivery_backoff_s": 0.2,  # the Retry-After is the longer wait
        }
    )
    web = WebSettings.model_validate({**settings.web.model_dump(), "public_url": PUBLIC})
    return settings.model_copy(update={"alerts": alerts, "web": web})


def rotations(dsn: str, people: dict[str, Person]) -> None:
    """Ana alone in the tower's rotation, Quinn alone in QA's; their phones and Quinn's mail."""
    admin = Caller(people["admin"].username, "admin", "test", people["admin"].full_name)
    with psycopg.Connection[DictRow].connect(dsn, autocommit=True, row_factory=dict_row) as conn:
        for username, phone, mail in (
            (people["operator"].username, ANA_PHONE, None),
            (people["qa"].username, QUINN_PHONE, QUINN_MAIL),
        ):
            conn.execute(
                "UPDATE app_users SET phone = %s, email = %s WHERE username = %s",
                (phone, mail, username),
            )
        for name, member in (
            ("cold-chain-tower", people["operator"].username),
            ("qa-oncall", people["qa"].username),
        ):
            spec = oncall.rotation_spec(
                team=name,
                time_zone="UTC",
                handover_time=dtime(7, 0),
                shift_days=1,
                start_date=date.today() - timedelta(days=10),
                members=[member],
            )
            oncall.create_rotation(conn, admin, name=name, spec=spec)


async def readings(pool: AsyncConnectionPool, start: datetime, temps: list[float]) -> None:  # noqa: F811
    batch = [Reading("LOG-1", start + timedelta(minutes=m), t) for m, t in enumerate(temps)]
    await TimescaleSink(pool).write(Batch.of(batch))


def texts(twilio: cs.ChannelServer, since: int) -> list[tuple[str, str]]:
    """(To, Body) of the SMS the gateway received from request ``since`` on."""
    return [(r.form()["To"], r.form()["Body"]) for r in twilio.requests[since:]]


def mails(box: Mailbox, since: int) -> list[EmailMessage]:
    found = [message_from_bytes(c, policy=policy.default) for _f, _to, c in box.messages[since:]]
    return [m for m in found if isinstance(m, EmailMessage)]


@pytest.mark.integration
async def test_trigger_reminders_escalation_ack_by_sms_reply_and_resolve(
    pool: AsyncConnectionPool,  # noqa: F811
    settings: Settings,
    db_dsn: str,
    people: dict[str, Person],
    smtp: tuple[Mailbox, int],
) -> None:
    box, smtp_port = smtp
    ana, quinn = people["operator"].username, people["qa"].username
    rotations(db_dsn, people)
    clock = Clock()
    timed = Timed(retry_after_s=2)
    async with (
        cs.ChannelServer(timed) as pd,
        cs.ChannelServer(cs.slack) as slack,
        cs.ChannelServer(cs.twilio) as twilio,
        httpx.AsyncClient(timeout=5) as client,
    ):
        s = story_settings(settings, pd=pd, twilio=twilio, smtp_port=smtp_port)
        rules_file = rules_from_text(
            RULES.format(slack=slack.base, routing_key=cs.ROUTING_KEY), source="oncall.toml"
        )
        engine = RulesEngine(pool, s, clock=clock, rules_file=rules_file)
        worker = DeliveryWorker(pool, s.alerts, senders_from_settings(s.alerts, client))

        # --- An excursion under way for 50 minutes: the alert opens now. -----------------
        before = clock.start - timedelta(hours=1)
        seed_shipment(db_dsn, start=before - timedelta(hours=1))
        await readings(pool, before, [5.0 if m < 10 else 12.0 for m in range(60)])
        await engine.setup()
        await engine.process_changes()
        ((alert_id, severity),) = rows(db_dsn, "SELECT alert_id, severity FROM alerts")
        assert severity == "major"  # reminded every 5 minutes, per the rules file
        dedup = f"coldchain-alert-{alert_id}"
        alert_link = f"{PUBLIC}/alerts?alert={alert_id}"

        assert await worker.deliver_due() == 3  # Slack and SMS delivered, PagerDuty 429
        after_first = time.monotonic()
        due_in = await worker.next_due_in()
        assert due_in is not None and 1.0 < due_in <= 2.0  # the Retry-After, not the backoff
        while len(timed.at) < 2:
            assert time.monotonic() - after_first < 10, "the trigger was never retried"
            await worker.deliver_due()
            await asyncio.sleep(0.05)
        assert timed.at[1] - timed.at[0] >= 2.0  # no earlier than the Retry-After said
        assert await worker.next_due_in() is None  # everything delivered

        trigger = pd.requests[1].json()
        assert (trigger["event_action"], trigger["dedup_key"]) == ("trigger", dedup)
        assert trigger["routing_key"] == cs.ROUTING_KEY
        assert trigger["payload"]["severity"] == "error"  # major
        assert {link["href"].split("/ack/")[0] for link in trigger["links"]} == {
            alert_link,
            PUBLIC,
        }
        (said,) = [r.json() for r in slack.requests]
        assert said["text"].startswith("[MAJOR] opened")
        assert alert_link in str(said["blocks"])
        ((to, body),) = texts(twilio, 0)
        assert to == ANA_PHONE
        assert (
            twilio.requests[0].headers["authorization"]
            == "Basic " + base64.b64encode(f"{cs.TWILIO_SID}:{cs.TWILIO_TOKEN}".encode()).decode()
        )
        assert twilio.requests[0].form()["From"] == SMS_FROM
        assert alert_link in body and REPLY.search(body)

        # --- Reminders every 5 minutes, then QA at 15 minutes. ----------------------------
        timeline: list[tuple[float, int, int]] = []
        told = (len(slack.requests), len(pd.requests), len(twilio.requests), len(box.messages))
        for minutes in (4.9, 5.1, 9.9, 10.2, 15.3):
            clock.at(minutes)
            timeline.append((minutes, await engine.escalate(), await engine.remind()))
            await worker.deliver_due()
        assert timeline == [
            (4.9, 0, 0),
            (5.1, 0, 1),
            (9.9, 0, 0),
            (10.2, 0, 1),
            (15.3, 1, 0),  # escalated; a notification, so no reminder on top
        ]
        assert await worker.next_due_in() is None
        reminders = [r.json()["text"] for r in slack.requests[told[0] :]]
        assert [t.split(":")[0] for t in reminders] == ["[MAJOR] reminder"] * 2
        # The reminders reach the person on call with a fresh reply code and link each time.
        sms = texts(twilio, told[2])
        assert [to for to, _ in sms] == [ANA_PHONE, ANA_PHONE, QUINN_PHONE]
        codes = [m.group(1) for _to, b in sms if (m := REPLY.search(b))]
        assert len(set(codes)) == 3
        assert all(alert_link in b for _to, b in sms)
        assert "reminder" in sms[0][1] and "escalated" in sms[2][1]
        (mail,) = mails(box, told[3])
        assert mail["To"] == QUINN_MAIL and "escalated" in mail["Subject"]
        assert f"{PUBLIC}/ack/" in mail.get_content()
        # PagerDuty keeps its one incident open: no reminder re-triggers it.
        assert [r.json()["event_action"] for r in pd.requests[told[1] :]] == []

        # --- Ana replies to her latest SMS: acknowledged, as her. ------------------------
        with psycopg.Connection[DictRow].connect(
            db_dsn, autocommit=True, row_factory=dict_row
        ) as conn:
            row = ack.acknowledge_by_sms(
                conn, from_phone=ANA_PHONE, body=f"ACK {codes[1]}", now=clock(), client="gateway"
            )
        assert (row["state"], row["acked_by"]) == ("acknowledged", ana)
        told = (len(slack.requests), len(pd.requests), len(twilio.requests), len(box.messages))
        await worker.deliver_due()
        assert await worker.next_due_in() is None
        ack_event = pd.requests[told[1]].json()
        assert (ack_event["event_action"], ack_event["dedup_key"]) == ("acknowledge", dedup)
        acked = slack.requests[told[0]].json()["text"]
        assert acked.startswith("[MAJOR] acknowledged: ") and acked.endswith(f"by {ana}")
        assert sorted(to for to, _ in texts(twilio, told[2])) == sorted([ANA_PHONE, QUINN_PHONE])
        assert not any(REPLY.search(b) for _to, b in texts(twilio, told[2]))  # nothing to ack
        assert [m["To"] for m in mails(box, told[3])] == [QUINN_MAIL]

        # --- Nothing more: no reminder, no escalation, however long it stays. -------------
        queued = rows(db_dsn, "SELECT count(*) FROM notifications")
        for minutes in (20.4, 31, 60):
            clock.at(minutes)
            assert (await engine.escalate(), await engine.remind()) == (0, 0)
        assert rows(db_dsn, "SELECT count(*) FROM notifications") == queued

        # --- Back in range: the alert clears and, acknowledged, resolves. ----------------
        told = (len(slack.requests), len(pd.requests), len(twilio.requests), len(box.messages))
        await readings(pool, clock.start, [5.0] * 30)
        clock.at(61)
        await engine.process_changes()
        await worker.deliver_due()
        assert await worker.next_due_in() is None
        assert rows(db_dsn, "SELECT state FROM alerts") == [("resolved",)]
        resolve = pd.requests[told[1]].json()
        assert (resolve["event_action"], resolve["dedup_key"]) == ("resolve", dedup)
        assert [r.json()["event_action"] for r in pd.requests[1:]] == [
            "trigger",
            "acknowledge",
            "resolve",
        ]
        assert all(r.json()["routing_key"] == cs.ROUTING_KEY for r in pd.requests)
        assert slack.requests[told[0]].json()["text"].startswith("[MAJOR] resolved")
        assert sorted(to for to, _ in texts(twilio, told[2])) == sorted([ANA_PHONE, QUINN_PHONE])
    # Who was told, by user name, from the rotations (never a number typed into the rules).
    assert {quinn, ana} <= {
        u for (u,) in rows(db_dsn, "SELECT username FROM ack_links WHERE username IS NOT NULL")
    }


def test_the_readme_on_call_example_is_a_valid_rules_file() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## On-call\n", 1)[1]
    example = section.split("```toml\n", 1)[1].split("\n```", 1)[0]
    rules = rules_from_text(example, source="README.md#on-call")
    assert rules.escalation is not None
    tiers = rules.escalation.tiers
    assert [t.rotation for t in tiers] == ["cold-chain-tower", "qa-oncall"]
    assert tiers[0].slack and tiers[0].pagerduty and tiers[0].via == ["sms"]
    assert tiers[1].after_min == 15 and set(tiers[1].via) == {"sms", "email"}
    assert rules.escalation.reminders is not None


def test_the_example_rules_file_loads() -> None:
    rules = load_rules_file(ROOT / "rules" / "example.toml")
    assert rules.escalation is not None and rules.escalation.tiers
