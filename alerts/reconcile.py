"""Reconciliation: the alerts of some shipments brought in line with their excursions and states.

Opens, joins, upgrades, clears and resolves alerts as :mod:`alerts.policy` decides, writes each
change's event, and queues its notifications in the outbox in the same transaction
(:class:`~alerts.delivery.DeliveryWorker` sends them). All the shipments of a round are settled
in one savepoint; if that fails, one savepoint per shipment, so a shipment whose alerts cannot
be settled is skipped, reported and remembered (:attr:`Reconciler.unsettled`, settled again at
every periodic pass) while the others are settled.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

from alerts import policy
from alerts.context import EngineStats, ReportFailure, ShipmentContext
from alerts.escalation import Notice, recipients, rotations_of
from alerts.outbox import LinkPolicy, queue_notifications
from alerts.rotations import on_call
from alerts.rows import AlertRecord, StateRecord, TempAlertStatus, UnlinkedExcursion, fetch
from alerts.rules import SECTION_OF, SECTIONS, EscalationPolicy
from coldchain import severity
from db.queries import rules as q

log = logging.getLogger(__name__)

SYSTEM_ACTOR = "system"
TEMPERATURE_KEYS = ("temp_high", "temp_low")

Alert = dict[str, Any]
"""An alert as reconciliation keeps it and the notifications carry it (see AlertRecord.alert)."""


class Reconciler:
    """Writes the alerts' changes, their events and their notifications."""

    def __init__(
        self,
        *,
        policy: Callable[[], EscalationPolicy],
        channels: set[str],
        default_clear: timedelta,
        stats: EngineStats,
        report: ReportFailure,
        links: LinkPolicy,
        clock: Callable[[], datetime],
    ) -> None:
        self._policy = policy
        self._links = links
        self._clock = clock  # who is on call is asked at the moment of notifying
        self._channels = channels
        self._default_clear = default_clear
        self._stats = stats
        self._report = report
        # Shipments whose alerts could not be settled: settled again at every periodic pass
        # (their states no longer change, so nothing else would bring them back).
        self.unsettled: set[int] = set()
        self._notify_pending = False

    async def reconcile(
        self,
        conn: AsyncConnection[Any],
        shipment_ids: Sequence[int],
        ctx: Mapping[int, ShipmentContext],
    ) -> None:
        """Open, join, upgrade, clear and resolve the alerts of some shipments.

        All at once in a savepoint; if that fails, one savepoint per shipment, so a shipment
        whose alerts cannot be settled is skipped (and reported) and the others still are.
        """
        if not shipment_ids:
            return
        try:
            async with conn.transaction():
                await self._reconcile_some(conn, list(shipment_ids), ctx)
            self.unsettled.difference_update(shipment_ids)
            return
        except psycopg.OperationalError:
            raise  # the connection is gone: the whole round is retried
        except Exception:
            pass  # find the culprit below
        for shipment_id in shipment_ids:
            try:
                async with conn.transaction():
                    await self._reconcile_some(conn, [shipment_id], ctx)
                self.unsettled.discard(shipment_id)
            except psycopg.OperationalError:
                raise
            except Exception as exc:
                self.unsettled.add(shipment_id)
                self._report(f"settling the alerts of shipment {shipment_id}", exc)

    async def _reconcile_some(
        self,
        conn: AsyncConnection[Any],
        ids: list[int],
        ctx: Mapping[int, ShipmentContext],
    ) -> None:
        alerts: dict[tuple[int, str], Alert] = {}
        for r in await fetch(conn, q.UNRESOLVED_ALERTS, (ids,), AlertRecord):
            c = ctx.get(r.shipment_id)
            alerts[(r.shipment_id, r.rule_key)] = r.alert(c.reference if c else None)
        await self._reconcile_temperature(conn, ids, ctx, alerts)
        await self._reconcile_rules(conn, ids, ctx, alerts)

    async def _reconcile_temperature(
        self,
        conn: AsyncConnection[Any],
        ids: list[int],
        ctx: Mapping[int, ShipmentContext],
        alerts: dict[tuple[int, str], Alert],
    ) -> None:
        for x in await fetch(conn, q.ALARMED_UNLINKED, (ids,), UnlinkedExcursion):
            c = ctx.get(x.shipment_id)
            thresholds = x.thresholds
            sev = policy.excursion_severity(x.freeze_alarm, thresholds)
            limit = (
                thresholds.get("high_c")
                if x.direction == "high"
                else (
                    thresholds.get("low_c")
                    if thresholds.get("low_c") is not None
                    else thresholds.get("freeze_c")
                )
            )
            title = policy.excursion_title(
                x.direction, x.freeze_alarm, x.extreme, limit, c.product_name if c else None
            )
            alert = alerts.get((x.shipment_id, x.rule_key))
            if alert is None:
                alert = await self.open_alert(
                    conn,
                    shipment_id=x.shipment_id,
                    reference=c.reference if c else None,
                    rule_key=x.rule_key,
                    severity=sev,
                    title=title,
                    device_id=x.device_id,
                    triggered_at=x.alarm_at,
                    value=x.extreme,
                    thresholds=thresholds,
                    details={"excursion_ids": [x.excursion_id]},
                    event_data={
                        "excursion_id": x.excursion_id,
                        "alarm_at": x.alarm_at,
                        "severity": sev,
                    },
                )
                alerts[(x.shipment_id, x.rule_key)] = alert
            else:
                await self.event(
                    conn,
                    alert["alert_id"],
                    "excursion_added",
                    None,
                    {"excursion_id": x.excursion_id},
                )
                await self._retime(conn, alert, x.alarm_at, x.device_id)
                if severity.stronger(sev, alert["severity"]) != alert["severity"]:
                    await self._upgrade(conn, alert, sev, title, x.extreme)
            await conn.execute(q.LINK_EXCURSION, (alert["alert_id"], x.excursion_id))

        temperature = {a["alert_id"]: a for k, a in alerts.items() if k[1] in TEMPERATURE_KEYS}
        if not temperature:
            return
        for s in await fetch(conn, q.TEMP_ALERT_STATUS, (list(temperature),), TempAlertStatus):
            alert = temperature[s.alert_id]
            c = ctx.get(alert["shipment_id"])
            rule = (c.rules.temperature if c else None) or SECTIONS["temperature"]()
            holding = s.open_excursions > 0
            quiet = policy.quiet_enough(
                holding=holding,
                last_end=s.last_end,
                as_of=s.as_of,
                clear_delay=rule.clear_delay(self._default_clear),
            )
            decision = policy.clear_decision(
                _alert_state(alert),
                holding=holding,
                quiet=quiet,
                auto_resolve=bool(getattr(rule, "auto_resolve", False)),
            )
            await self.transition(conn, alert, decision)

    async def _reconcile_rules(
        self,
        conn: AsyncConnection[Any],
        ids: list[int],
        ctx: Mapping[int, ShipmentContext],
        alerts: dict[tuple[int, str], Alert],
    ) -> None:
        grouped: dict[tuple[int, str], list[policy.StoredState]] = defaultdict(list)
        for r in await fetch(conn, q.SHIPMENT_STATES, (ids,), StateRecord):
            grouped[(r.shipment_id, r.rule_key)].append(r.stored())
        keys = set(grouped) | {k for k in alerts if k[1] not in TEMPERATURE_KEYS}
        for shipment_id, key in sorted(keys):
            c = ctx.get(shipment_id)
            section_name = SECTION_OF.get(key)
            if section_name is None:
                continue  # an alert of a rule this engine does not own
            section = (c.rules.section(section_name) if c else None) or SECTIONS[section_name]()
            alert = alerts.get((shipment_id, key))
            plan = policy.plan_rule_alert(
                _alert_state(alert) if alert else None,
                grouped.get((shipment_id, key), []),
                clear_delay=section.clear_delay(self._default_clear),
                auto_resolve=bool(getattr(section, "auto_resolve", False)),
            )
            name = c.product_name if c else None
            if plan.open is not None:
                new = plan.open
                thresholds = c.rules.snapshot(section_name) if c else {}
                alert = await self.open_alert(
                    conn,
                    shipment_id=shipment_id,
                    reference=c.reference if c else None,
                    rule_key=key,
                    severity=new.severity,
                    title=policy.rule_title(key, new.state, new.device_id, name),
                    device_id=new.device_id,
                    triggered_at=new.triggered_at,
                    value=new.state.value,
                    thresholds=thresholds,
                    details={"devices": sorted({s.device_id for s in plan.take})},
                    event_data={
                        "device_id": new.device_id,
                        "since": new.state.since,
                        "alarm_at": new.triggered_at,
                        "severity": new.severity,
                        "details": dict(new.state.details),
                    },
                )
                alerts[(shipment_id, key)] = alert
            elif alert is not None:
                for s in plan.take:
                    assert s.state.trigger_at is not None
                    await self._retime(conn, alert, s.state.trigger_at, s.device_id)
                    await self.event(
                        conn,
                        alert["alert_id"],
                        "episode_added",
                        None,
                        {
                            "device_id": s.device_id,
                            "since": s.state.since,
                            "alarm_at": s.state.trigger_at,
                        },
                    )
            if alert is None:
                continue
            for s in plan.take:
                await conn.execute(q.TAKE_STATE, (alert["alert_id"], shipment_id, s.device_id, key))
            if plan.upgrade_to is not None and plan.strongest is not None:
                top = plan.strongest
                title = policy.rule_title(key, top.state, top.device_id, name)
                await self._upgrade(conn, alert, plan.upgrade_to, title, top.state.value)
            await self.transition(conn, alert, plan.transition)

    async def open_alert(
        self,
        conn: AsyncConnection[Any],
        *,
        shipment_id: int,
        reference: str | None,
        rule_key: str,
        severity: str,
        title: str,
        device_id: str | None,
        triggered_at: datetime,
        value: float | None,
        thresholds: Mapping[str, Any],
        details: Mapping[str, Any],
        event_data: Mapping[str, Any],
    ) -> Alert:
        """Open an alert, with its "opened" event and its tier-0 notifications."""
        thresholds = policy.json_safe(dict(thresholds))
        row = await (
            await conn.execute(
                q.OPEN_ALERT,
                (
                    shipment_id,
                    rule_key,
                    severity,
                    title,
                    device_id,
                    triggered_at,
                    value,
                    Jsonb(thresholds),
                    Jsonb(policy.json_safe(dict(details))),
                ),
            )
        ).fetchone()
        assert row is not None
        alert: Alert = {
            "alert_id": int(row[0]),  # RETURNING alert_id, the one column
            "shipment_id": shipment_id,
            "reference": reference,
            "rule_key": rule_key,
            "severity": severity,
            "state": "open",
            "cleared": False,
            "title": title,
            "device_id": device_id,
            "triggered_at": triggered_at,
            "value": value,
            "thresholds": thresholds,
            "escalation_level": 0,
        }
        await self.event(conn, alert["alert_id"], "opened", None, event_data)
        await self.notify(conn, alert, "opened", range(0, 1))
        self._stats.alerts_opened += 1
        log.info("alert %d opened for shipment %d: %s", alert["alert_id"], shipment_id, title)
        return alert

    async def _retime(
        self, conn: AsyncConnection[Any], alert: Alert, alarm_at: datetime, device_id: str
    ) -> None:
        """Late data revealed an earlier alarm: the alert carries the earliest alarm's time.

        So an alert reads the same whatever order the data came in; the earlier time is kept in
        the event.
        """
        if alarm_at >= alert["triggered_at"]:
            return
        await conn.execute(q.RETIME_ALERT, (alarm_at, device_id, alert["alert_id"]))
        await self.event(
            conn,
            alert["alert_id"],
            "retimed",
            "late data revealed an earlier alarm",
            {"from": alert["triggered_at"], "to": alarm_at, "device_id": device_id},
        )
        alert.update(triggered_at=alarm_at, device_id=device_id)

    async def _upgrade(
        self,
        conn: AsyncConnection[Any],
        alert: Alert,
        severity: str,
        title: str,
        value: float | None,
    ) -> None:
        old = alert["severity"]
        await conn.execute(q.UPGRADE_ALERT, (severity, title, value, alert["alert_id"]))
        alert.update(severity=severity, title=title, value=value)
        await self.event(conn, alert["alert_id"], "upgraded", None, {"from": old, "to": severity})
        await self.notify(conn, alert, "upgraded", range(0, alert["escalation_level"] + 1))

    async def transition(
        self, conn: AsyncConnection[Any], alert: Alert, decision: policy.Transition | None
    ) -> None:
        """Clear, re-open or resolve an alert as decided, with its event and notifications (the
        system alerts of alerts.ingest_watch use it too)."""
        if decision is None:
            return
        alert_id = alert["alert_id"]
        if decision == "clear":
            await conn.execute(q.CLEAR_ALERT, (alert_id,))
            alert["cleared"] = True
            await self.event(conn, alert_id, "cleared", None, {})
        elif decision == "reopen":
            await conn.execute(q.REOPEN_ALERT, (alert_id,))
            alert["cleared"] = False
            await self.event(conn, alert_id, "reopened", None, {})
        else:
            why = (
                "condition cleared after acknowledgement"
                if alert["state"] == "acknowledged"
                else "condition cleared (the rule resolves by itself)"
            )
            await conn.execute(q.RESOLVE_ALERT, (SYSTEM_ACTOR, alert_id))
            alert["state"] = "resolved"
            await self.event(conn, alert_id, "resolved", why, {})
        event = {"clear": "cleared", "reopen": "reopened", "resolve": "resolved"}[decision]
        await self.notify(conn, alert, event, range(0, alert["escalation_level"] + 1))

    async def event(
        self,
        conn: AsyncConnection[Any],
        alert_id: int,
        kind: str,
        comment: str | None,
        data: Mapping[str, Any],
    ) -> None:
        """Record an event of the alert's history, by the system."""
        await conn.execute(
            q.ALERT_EVENT,
            (alert_id, kind, SYSTEM_ACTOR, comment, Jsonb(policy.json_safe(dict(data)))),
        )

    async def notify(
        self,
        conn: AsyncConnection[Any],
        alert: Mapping[str, Any],
        event: str,
        tiers: range,
        *,
        extra: Mapping[str, Any] | None = None,
        skip_channels: frozenset[str] = frozenset(),
    ) -> None:
        """Queue the event for the tiers' recipients, in this transaction (the outbox), each
        with its links (alerts.outbox); none on ``skip_channels`` (reminders: NOT_REMINDED).

        A rotation tier's person on call is looked up now; whatever keeps someone from being
        told (no phone for ``via = ["sms"]``, nobody on call) is recorded on the alert's
        timeline, and a tier left with nobody at all is logged as an error too."""
        policy = self._policy()
        names = rotations_of(policy, tiers)
        now = self._clock()
        people = await on_call(conn, names, now) if names else {}
        found = recipients(
            policy, tiers, people, channels=self._channels, severity=str(alert["severity"])
        )
        for notice in found.warnings:
            await self._warn(conn, alert, event, notice)
        targets = [t for t in found.targets if t.channel not in skip_channels]
        queued = await queue_notifications(
            conn, alert, event, targets, links=self._links, now=now, extra=extra
        )
        if queued:
            self._stats.notifications_queued += queued
            self._notify_pending = True

    async def _warn(
        self, conn: AsyncConnection[Any], alert: Mapping[str, Any], event: str, notice: Notice
    ) -> None:
        """Log what kept someone from being told and record it on the alert's timeline."""
        log.log(
            logging.ERROR if notice.nobody else logging.WARNING,
            "alert %d %s: %s",
            alert["alert_id"],
            event,
            notice.text,
        )
        data = {"tier": notice.tier, "event": event, "nobody": notice.nobody}
        await self.event(conn, alert["alert_id"], "notification_warning", notice.text, data)

    async def flush_notify(self, conn: AsyncConnection[Any]) -> None:
        """Wake the delivery worker at commit if this transaction queued notifications."""
        if self._notify_pending:
            await conn.execute(q.NOTIFY_NOTIFICATIONS)
            self._notify_pending = False


def _alert_state(alert: Mapping[str, Any]) -> policy.AlertState:
    return policy.AlertState(
        alert["alert_id"], alert["rule_key"], alert["severity"], alert["state"], alert["cleared"]
    )
