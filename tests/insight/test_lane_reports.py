"""The weekly lane report (CSV, PDF), subscriptions with their role checks, and the sender
(at most once per subscription and week) against a real SMTP receiver (aiosmtpd)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from coldchain.errors import InvalidRecordError, NotFoundError, PermissionDeniedError
from coldchain.insight.weeks import last_complete_week, parse_week, week_of
from coldchain.settings import AlertsSettings, Settings
from db.types import Conn
from launcher.localstack import free_port
from security.roles import Role
from services import lane_reports
from services.caller import Caller
from tests.fixtures.auth import Person
from tests.insight.history import LANE_A, LANE_A_SHIPMENTS, seed_history


class Mailbox:
    """aiosmtpd handler that keeps what it receives."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], bytes]] = []

    async def handle_DATA(self, server: object, session: object, envelope: Any) -> str:
        self.messages.append((list(envelope.rcpt_tos), envelope.content))
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp() -> Iterator[tuple[Mailbox, int]]:
    box, port = Mailbox(), free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield box, port
    finally:
        controller.stop()


def with_smtp(settings: Settings, port: int) -> Settings:
    alerts = AlertsSettings.model_validate(
        {
            **settings.alerts.model_dump(),
            "smtp_host": "127.0.0.1",
            "smtp_port": port,
            "webhook_timeout_s": 2.0,
        }
    )
    return settings.model_copy(update={"alerts": alerts})


def figures(report_csv: bytes, section: str, lane: str, carrier: str = "") -> dict[str, str]:
    rows = csv.DictReader(io.StringIO(report_csv.decode()))
    return {
        r["field"]: r["value"]
        for r in rows
        if r["section"] == section and r["lane"] == lane and r["carrier"] == carrier
    }


def test_the_weekly_report_has_the_weeks_figures(conn: Conn, db_dsn: str) -> None:
    seed_history(db_dsn)
    first = LANE_A_SHIPMENTS[0]
    assert first.arrived_at is not None
    week = week_of(first.arrived_at.date())
    report = lane_reports.weekly_report(conn, week=week, lane=LANE_A)
    arrived = [
        s for s in LANE_A_SHIPMENTS if s.arrived_at and week.start <= s.arrived_at < week.end
    ]
    lane = figures(report.csv, "lane", LANE_A)
    assert int(lane["shipments"]) == len(arrived)
    assert lane["score"] == ""  # one week of one lane is below the minimum
    assert f"has {len(arrived)} finished shipment" in lane["note"]
    sky = figures(report.csv, "carrier", LANE_A, "SkyCargo")
    assert int(sky["legs"]) == sum(1 for s in arrived if "SkyCargo" in s.legs)
    assert report.pdf.startswith(b"%PDF") and report.name.endswith(week.label)
    # deterministic: the same week gives the same bytes
    again = lane_reports.weekly_report(conn, week=week, lane=LANE_A)
    assert (again.csv, again.pdf) == (report.csv, report.pdf)
    by_carrier = lane_reports.weekly_report(conn, week=week, carrier="SkyCargo")
    assert {r["carrier"] for r in csv.DictReader(io.StringIO(by_carrier.csv.decode()))} >= {
        "SkyCargo"
    }
    with pytest.raises(InvalidRecordError, match="one lane or one carrier"):
        lane_reports.weekly_report(conn, week=week)
    with pytest.raises(NotFoundError, match="no carrier"):
        lane_reports.weekly_report(conn, week=week, carrier="Nobody")


def test_weeks_parse_and_end_on_monday() -> None:
    week = parse_week("2026-W05")
    assert week.start == datetime(2026, 1, 26, tzinfo=UTC) and week.label == "2026-W05"
    assert parse_week("2026-01-28") == week
    assert last_complete_week(datetime(2026, 2, 2, 0, 0, tzinfo=UTC)) == week
    with pytest.raises(ValueError, match="ISO week"):
        parse_week("last week")


def test_subscriptions_belong_to_their_person(
    conn: Conn, db_dsn: str, callers: dict[Role, Caller], people: dict[Role, Person]
) -> None:
    seed_history(db_dsn)
    viewer, admin = callers["viewer"], callers["admin"]
    with pytest.raises(InvalidRecordError, match="email"):
        lane_reports.subscribe(conn, viewer, lane=LANE_A)  # no address on file
    mine = lane_reports.subscribe(conn, viewer, lane=LANE_A, email="v@example.org")
    assert mine["username"] == people["viewer"].username and mine["lane"] == LANE_A
    # the same again is the same subscription
    assert lane_reports.subscribe(conn, viewer, lane=LANE_A, email="v@example.org") == mine
    with pytest.raises(PermissionDeniedError):
        lane_reports.subscribe(
            conn, viewer, carrier="SkyCargo", email="x@example.org", username=people["qa"].username
        )
    theirs = lane_reports.subscribe(
        conn, admin, carrier="SkyCargo", email="q@example.org", username=people["qa"].username
    )
    assert [s["subscription_id"] for s in lane_reports.subscriptions(conn, viewer)] == [
        mine["subscription_id"]
    ]
    with pytest.raises(PermissionDeniedError):
        lane_reports.subscriptions(conn, viewer, everyone=True)
    assert len(lane_reports.subscriptions(conn, admin, everyone=True)) == 2
    with pytest.raises(NotFoundError):
        lane_reports.unsubscribe(conn, viewer, theirs["subscription_id"])
    ended = lane_reports.unsubscribe(conn, viewer, mine["subscription_id"])
    assert ended["active"] is False and ended["ended_at"] is not None
    with pytest.raises(NotFoundError, match="no lane"):
        lane_reports.subscribe(conn, viewer, lane="NOPE", email="v@example.org")
    audited = conn.execute(
        "SELECT actor FROM audit_log WHERE entity = 'report_subscriptions' ORDER BY seq"
    ).fetchall()
    assert [r["actor"] for r in audited] == [
        people["viewer"].username,
        people["admin"].username,
        people["viewer"].username,
    ]


def test_the_sender_mails_each_due_week_once(
    conn: Conn,
    db_dsn: str,
    settings: Settings,
    smtp: tuple[Mailbox, int],
    callers: dict[Role, Caller],
) -> None:
    seed_history(db_dsn)
    box, port = smtp
    cfg = with_smtp(settings, port)
    sub = lane_reports.subscribe(conn, callers["viewer"], lane=LANE_A, email="v@example.org")
    # the week the subscription was made in is due once it has ended
    now = datetime.now(UTC) + timedelta(days=7)
    stats = lane_reports.send_due(conn, cfg, now=now)
    assert (stats.sent, stats.failed) == (1, 0)
    ((rcpt, raw),) = box.messages
    msg = message_from_bytes(raw)
    assert rcpt == ["v@example.org"] and stats.week in msg["Subject"]
    names = sorted(p.get_filename() or "" for p in msg.walk() if p.get_filename())
    assert names == [f"lane-report-lane-{LANE_A}-{stats.week}.{x}" for x in ("csv", "pdf")]
    # at most once: a second pass (or a second sender) sends nothing more
    assert lane_reports.send_due(conn, cfg, now=now).sent == 0
    assert len(box.messages) == 1
    (sent,) = lane_reports.sends(conn, callers["viewer"], sub["subscription_id"])
    assert sent["sent_at"] is not None and sent["error"] is None


def test_a_failed_send_is_recorded_and_not_repeated(
    conn: Conn, db_dsn: str, settings: Settings, callers: dict[Role, Caller]
) -> None:
    seed_history(db_dsn)
    cfg = with_smtp(settings, free_port())  # nobody listens there
    sub = lane_reports.subscribe(conn, callers["viewer"], lane=LANE_A, email="v@example.org")
    now = datetime.now(UTC) + timedelta(days=7)
    assert lane_reports.send_due(conn, cfg, now=now).failed == 1
    assert lane_reports.send_due(conn, cfg, now=now).failed == 0
    (sent,) = lane_reports.sends(conn, callers["viewer"], sub["subscription_id"])
    assert sent["sent_at"] is None and "Connection" in sent["error"]


def test_nothing_is_sent_or_recorded_without_smtp(
    conn: Conn, db_dsn: str, settings: Settings, callers: dict[Role, Caller]
) -> None:
    seed_history(db_dsn)
    assert settings.alerts.smtp_host is None
    sub = lane_reports.subscribe(conn, callers["viewer"], lane=LANE_A, email="v@example.org")
    stats = lane_reports.send_due(conn, settings, now=datetime.now(UTC) + timedelta(days=7))
    assert (stats.sent, stats.failed) == (0, 0)
    assert lane_reports.sends(conn, callers["viewer"], sub["subscription_id"]) == []
