"""The weekly lane quality report: its files, the subscriptions to it, and their sender.

**The report** (:func:`weekly_report`) of one lane or one carrier for one ISO week: the figures of
:mod:`services.insight` over the shipments that arrived that week, rendered by
:mod:`reports.lane_report` (CSV and PDF). The API (``GET /api/v1/insight/reports/…``) and the
Insight page download it; the sender mails it.

**Subscriptions** (migration 0029) belong to a person: anyone who may read subscribes themselves
(to their own e-mail address, or another one they give), sees and ends their own; an admin may
subscribe anyone and sees and ends everyone's. Every change is audited with who made it.

**The sender** (:func:`send_due`) is a step of the automation stage (``coldchain automate``, part
of ``coldchain up``; :class:`services.automation.Automation` calls it with each sweep): the
services' own long-running worker, where a read of the figures and a mail every week costs
nothing, rather than the rules engine, which may not import the services (tests/test_layers.py).
Each Monday after 00:00 UTC, every active subscription made before the past week ended gets the
report of that week, once: a ``report_sends`` row is inserted (committed) *before* the mail goes,
so a sender killed mid-way or two senders at once never send a week twice (at most once); a
failed send is recorded with its error on that row and not retried. It mails through the alerts'
SMTP settings (``COLDCHAIN_ALERTS__SMTP_*``); without an SMTP host, or with
``insight.send_weekly_reports`` off, nothing is sent and nothing recorded.
"""

from __future__ import annotations

import logging
import smtplib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from typing import Final

from coldchain.errors import InvalidRecordError, NotFoundError
from coldchain.insight.weeks import Week, last_complete_week
from coldchain.settings import AlertsSettings, Settings
from db.queries import insight as q
from db.types import Conn, Row
from reports.lane_report import LaneReport, render
from services import insight
from services.caller import Caller, acting

log = logging.getLogger(__name__)

EMAIL_MAX: Final = 320


def _scope(lane: str | None, carrier: str | None) -> str:
    if (lane is None) == (carrier is None):
        raise InvalidRecordError("lane", "give one lane or one carrier (not both, not neither)")
    return f"lane {lane}" if lane is not None else f"carrier {carrier}"


def weekly_report(
    conn: Conn,
    *,
    week: Week,
    lane: str | None = None,
    carrier: str | None = None,
    min_shipments: int | None = None,
    min_carrier_legs: int | None = None,
) -> LaneReport:
    """The report of ``lane`` (its figures and carriers) or of ``carrier`` (its scorecards on
    every lane, and those lanes' figures) for ``week``."""
    _scope(lane, carrier)
    if carrier is not None:
        # by name or code; the legs name carriers by name
        row = q.carrier(conn=conn, name=carrier)
        if row is None:
            raise NotFoundError(f"no carrier {carrier!r}")
        carrier = str(row["name"])
    scope = _scope(lane, carrier)
    since, until = week.start, week.end
    cards = insight.carrier_scores(
        conn, lane=lane, carrier=carrier, since=since, until=until, minimum=min_carrier_legs
    )
    if lane is not None:
        lanes = insight.lane_risk(conn, lane=lane, since=since, until=until, minimum=min_shipments)
    else:
        served = {c.lane for c in cards}
        lanes = [
            r
            for r in insight.lane_risk(conn, since=since, until=until, minimum=min_shipments)
            if r.lane in served
        ]
    return render(scope=scope, week=week, lanes=lanes, carriers=cards)


# ---------------------------------------------------------------------------------------------
# Subscriptions
# ---------------------------------------------------------------------------------------------


def _email(value: str | None, person: Row | None, username: str) -> str:
    if value is None or not value.strip():
        if person is None or not person["email"]:
            raise InvalidRecordError(
                "email", f"{username} has no e-mail address on file: give the address to send to"
            )
        return str(person["email"])
    text = value.strip()
    local, at, domain = text.partition("@")
    if not at or not local or not domain or " " in text or len(text) > EMAIL_MAX:
        raise InvalidRecordError("email", f"{value!r} is not an e-mail address")
    return text


def subscribe(
    conn: Conn,
    caller: Caller,
    *,
    lane: str | None = None,
    carrier: str | None = None,
    email: str | None = None,
    username: str | None = None,
) -> Row:
    """Subscribe ``username`` (default: the caller; someone else: admin only) to the weekly
    report of ``lane`` or ``carrier``, sent to ``email`` (default: the person's address on
    file). The same active subscription again is returned as it is (idempotent)."""
    caller.require("read")
    _scope(lane, carrier)
    who = caller.actor if username is None else username.strip().lower()
    if who != caller.actor:
        caller.require("admin")
    person = q.person(conn=conn, username=who)
    if username is not None and (person is None or not person["active"]):
        raise NotFoundError(f"no active person {who!r}")
    address = _email(email, person, who)
    lane_id = carrier_id = None
    if lane is not None and (lane_id := q.lane_id(conn=conn, code=lane)) is None:
        raise NotFoundError(f"no lane {lane!r}")
    if carrier is not None:
        found = q.carrier(conn=conn, name=carrier)
        if found is None:
            raise NotFoundError(f"no carrier {carrier!r}")
        carrier_id = int(found["carrier_id"])
    with conn.transaction(), acting(conn, caller, "subscribe to the weekly lane report"):
        new = q.insert_subscription(
            conn=conn, username=who, lane_id=lane_id, carrier_id=carrier_id, email=address
        )
    if new is not None:
        row = q.subscription(conn=conn, subscription_id=new)
        assert row is not None
        return row
    return next(
        r
        for r in q.subscriptions(conn=conn, username=who)
        if r["active"]
        and r["lane_id"] == lane_id
        and r["carrier_id"] == carrier_id
        and r["email"].lower() == address.lower()
    )


def subscriptions(conn: Conn, caller: Caller, *, everyone: bool = False) -> list[Row]:
    """The caller's subscriptions; ``everyone``'s for an admin."""
    caller.require("read")
    if everyone:
        caller.require("admin")
        return q.subscriptions(conn=conn)
    return q.subscriptions(conn=conn, username=caller.actor)


def unsubscribe(conn: Conn, caller: Caller, subscription_id: int) -> Row:
    """End a subscription (one's own; anyone's for an admin); ending an ended one changes
    nothing."""
    caller.require("read")
    row = q.subscription(conn=conn, subscription_id=subscription_id)
    if row is None or (row["username"] != caller.actor and not caller.can("admin")):
        # someone else's is not shown to a non-admin: the same answer as none
        raise NotFoundError(f"no subscription {subscription_id} of {caller.actor}")
    with conn.transaction(), acting(conn, caller, "end the weekly lane report subscription"):
        q.end_subscription(conn=conn, subscription_id=subscription_id)
    ended = q.subscription(conn=conn, subscription_id=subscription_id)
    assert ended is not None
    return ended


def sends(conn: Conn, caller: Caller, subscription_id: int) -> list[Row]:
    """The weeks sent to a subscription (its owner's or an admin's to see)."""
    row = q.subscription(conn=conn, subscription_id=subscription_id)
    if row is None or (row["username"] != caller.actor and not caller.can("admin")):
        raise NotFoundError(f"no subscription {subscription_id} of {caller.actor}")
    return q.sends(conn=conn, subscription_id=subscription_id)


# ---------------------------------------------------------------------------------------------
# The sender
# ---------------------------------------------------------------------------------------------


def report_message(
    report: LaneReport, *, scope: str, week: Week, sender: str, to: str
) -> EmailMessage:
    """The mail: a short text, the PDF and the CSV attached."""
    msg = EmailMessage()
    msg["Subject"] = f"[coldchain] Lane quality report, {scope}, {week.label}"
    msg["From"] = sender
    msg["To"] = to
    msg.set_content(
        f"The lane quality report of {scope} for {week.label} (shipments that arrived from "
        f"{week.start:%Y-%m-%d} to {week.end:%Y-%m-%d}, UTC) is attached as PDF and CSV.\n"
        "You receive it because of a subscription; end it on the Insight page.\n"
    )
    msg.add_attachment(
        report.pdf, maintype="application", subtype="pdf", filename=f"{report.name}.pdf"
    )
    msg.add_attachment(report.csv, maintype="text", subtype="csv", filename=f"{report.name}.csv")
    return msg


def smtp_send(cfg: AlertsSettings, msg: EmailMessage) -> None:
    """Send over the alerts' SMTP server (as alerts.delivery.EmailSender connects)."""
    assert cfg.smtp_host is not None
    with smtplib.SMTP(cfg.smtp_host, cfg.smtp_port, timeout=cfg.webhook_timeout_s) as smtp:
        if cfg.smtp_starttls:
            smtp.starttls()
        if cfg.smtp_username:
            password = cfg.smtp_password.get_secret_value() if cfg.smtp_password else ""
            smtp.login(cfg.smtp_username, password)
        refused = smtp.send_message(msg)
    if refused:
        raise smtplib.SMTPRecipientsRefused(refused)


@dataclass
class SendStats:
    """What one call of :func:`send_due` did."""

    week: str = ""
    sent: int = 0
    failed: int = 0


def send_due(
    conn: Conn,
    settings: Settings,
    *,
    now: datetime,
    send: Callable[[AlertsSettings, EmailMessage], None] = smtp_send,
) -> SendStats:
    """Mail the past week's report to every subscription due it, at most once each (see the
    module docstring). ``conn`` is in autocommit, so each claim is committed before its mail."""
    week = last_complete_week(now)
    stats = SendStats(week=week.label)
    if not settings.insight.send_weekly_reports or settings.alerts.smtp_host is None:
        return stats
    for sub in q.due_subscriptions(conn=conn, week_start=week.start):
        sid = int(sub["subscription_id"])
        if not q.claim_send(conn=conn, subscription_id=sid, week_start=week.start):
            continue  # another sender has it
        scope = f"lane {sub['lane']}" if sub["lane"] else f"carrier {sub['carrier']}"
        error = None
        try:
            report = weekly_report(
                conn,
                week=week,
                lane=sub["lane"],
                carrier=sub["carrier"],
                min_shipments=settings.insight.min_shipments,
                min_carrier_legs=settings.insight.min_carrier_legs,
            )
            msg = report_message(
                report, scope=scope, week=week, sender=settings.alerts.smtp_from, to=sub["email"]
            )
            send(settings.alerts, msg)
        except (OSError, smtplib.SMTPException) as exc:
            error = f"{type(exc).__name__}: {exc}"[:1000]
            log.warning("weekly lane report %s to %s failed: %s", week.label, sub["email"], error)
        q.record_send(conn=conn, subscription_id=sid, week_start=week.start, error=error)
        if error is None:
            stats.sent += 1
        else:
            stats.failed += 1
    return stats
