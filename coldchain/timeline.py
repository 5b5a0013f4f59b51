"""A shipment's event timeline: what happened to it, in order, from every record that says so.

Pure: plain rows in, :class:`TimelineEntry` values out; no I/O, no clock. The read that gathers
the rows is :func:`services.timeline.shipment_timeline`; the shipment page draws the result.

Where each entry comes from (each record is kept where it is written; the timeline only reads):

* the lifecycle (``shipment_events``): booked, started, arrived, under QA review, the arrival
  verdict of each product, released / quarantined / rejected / returned, cancelled, and the
  booking changes worth showing (logger attached or detached, calibration override);
* the excursions the rules engine recorded (current versions only): when the product left its
  range, when the excursion alarmed (after the rule's delay), and when it came back in range;
* the alerts' own history (``alert_events``): raised, upgraded, escalated (with the tiers
  notified), acknowledged and commented (who, and what they wrote), assigned, condition cleared,
  reopened, resolved;
* the signed dispositions: who signed which decision, with what meaning and why.

A shipment booked before the lifecycle timeline existed has no ``create`` entry: its row's
``created_at`` stands in, so every timeline starts with the booking.

Order: by time; at the same instant by :data:`KIND_ORDER` (the order in which such things
happen: an excursion starts before it alarms, an alarm is raised before it is acknowledged);
then in the order the sources gave them (each source is itself in time order).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

Source = Literal["lifecycle", "excursion", "alert", "disposition"]
#: How an entry is coloured: the dashboard's badge kinds.
Tone = Literal["alarm", "warning", "ok", "info", "offline"]

__all__ = ["KIND_ORDER", "TimelineEntry", "assemble_timeline", "latest"]


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    """One thing that happened to a shipment, in words a logistics or QA person reads."""

    at: datetime
    #: A machine code (``excursion_start``, ``alarm_raised``, ``acknowledged``, ``released``…).
    kind: str
    #: What happened, in plain words ("Out of range (high) on LOG-1").
    title: str
    #: Who did it (a person, ``engine``, ``policy:<id>``), or None for a measured fact.
    actor: str | None
    #: Why, what they wrote, or the figures ("peak 12.8 °C"); None when there is nothing more.
    detail: str | None
    source: Source
    tone: Tone


#: At the same instant, entries sort in this order (an unknown kind sorts last).
KIND_ORDER: tuple[str, ...] = (
    "created",
    "updated",
    "logger_attached",
    "calibration_override",
    "started",
    "excursion_start",
    "alarm_raised",
    "alarm_upgraded",
    "escalated",
    "acknowledged",
    "comment",
    "assigned",
    "excursion_end",
    "condition_cleared",
    "reopened",
    "alert_resolved",
    "logger_detached",
    "arrived",
    "verdict",
    "under_review",
    "signed",
    "released",
    "quarantined",
    "rejected",
    "returned",
    "cancelled",
)
_RANK = {kind: i for i, kind in enumerate(KIND_ORDER)}

# shipment_events.event → (kind, title, tone); a verdict's title names its outcome.
_LIFECYCLE: dict[str, tuple[str, str, Tone]] = {
    "create": ("created", "Booked", "info"),
    "update": ("updated", "Booking changed", "info"),
    "start": ("started", "Started: in transit", "info"),
    "arrive": ("arrived", "Arrived", "info"),
    "review": ("under_review", "Under QA review", "warning"),
    "verdict": ("verdict", "Arrival verdict", "info"),
    "release": ("released", "Released", "ok"),
    "quarantine": ("quarantined", "Quarantined", "alarm"),
    "reject": ("rejected", "Rejected", "alarm"),
    "return": ("returned", "Returned", "alarm"),
    "cancel": ("cancelled", "Cancelled", "offline"),
    "logger_attached": ("logger_attached", "Logger attached", "info"),
    "logger_detached": ("logger_detached", "Logger detached", "info"),
    "calibration_override": ("calibration_override", "Calibration override", "warning"),
}

# alert_events.kind → (kind, title); the tone follows the alert's severity or the event.
_ALERT: dict[str, tuple[str, str]] = {
    "opened": ("alarm_raised", "Alarm raised"),
    "upgraded": ("alarm_upgraded", "Alarm upgraded"),
    "escalated": ("escalated", "Escalated"),
    "acknowledged": ("acknowledged", "Acknowledged"),
    "comment": ("comment", "Comment"),
    "assigned": ("assigned", "Assigned"),
    "cleared": ("condition_cleared", "Alarm condition cleared"),
    "reopened": ("reopened", "Alarm condition back"),
    "resolved": ("alert_resolved", "Alert resolved"),
}
_SEVERITY_TONE: dict[str, Tone] = {
    "critical": "alarm",
    "major": "alarm",
    "warning": "warning",
    "info": "info",
}
_DECISION_TONE: dict[str, Tone] = {
    "release": "ok",
    "quarantine": "alarm",
    "reject": "alarm",
    "return": "alarm",
}


def _c(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f} °C"


def _lifecycle(row: Mapping[str, Any]) -> TimelineEntry:
    kind, title, tone = _LIFECYCLE.get(
        row["event"], (row["event"], row["event"].replace("_", " ").capitalize(), "info")
    )
    data = row.get("data") or {}
    detail = row.get("reason")
    if kind == "verdict":
        outcome = data.get("verdict")
        title = f"Arrival verdict: {outcome}" if outcome else title
        tone = "ok" if outcome == "conforming" else "warning" if outcome else "info"
        version = data.get("profile_version")
        judged = f"profile version {version}" if version else "the product's own range and budget"
        gtin = data.get("gtin")
        detail = f"GTIN {gtin}, judged by {judged}" if gtin else detail
    elif not detail and isinstance(data, Mapping):
        if "device_id" in data:
            detail = f"logger {data['device_id']}"
        elif "reference" in data:
            detail = f"reference {data['reference']}"
    return TimelineEntry(
        row["at"], kind, title, row.get("actor"), detail or None, "lifecycle", tone
    )


def _excursion(row: Mapping[str, Any]) -> list[TimelineEntry]:
    direction = row["direction"]
    logger = row["device_id"]
    peak = row["max_c"] if direction == "high" else row["min_c"]
    word = "too warm" if direction == "high" else "too cold"
    out = [
        TimelineEntry(
            row["start_ts"],
            "excursion_start",
            f"Out of range ({word}) on {logger}",
            None,
            None,
            "excursion",
            "alarm" if row.get("alarm") else "warning",
        )
    ]
    # The alarm itself is the alert's "opened" entry when the alert's history is given; the
    # excursion's own alarm time is shown only for an excursion whose alert is not (none, or
    # joined to an alert opened earlier).
    if row.get("alarm") and row.get("alarm_at") is not None and not row.get("alert_shown"):
        out.append(
            TimelineEntry(
                row["alarm_at"],
                "alarm_raised",
                f"Excursion on {logger} alarmed",
                None,
                "out of range for longer than the rule's delay",
                "excursion",
                "alarm",
            )
        )
    if row.get("end_ts") is not None:
        how = "data gap (end unknown)" if row.get("ended_by_gap") else "back in range"
        out.append(
            TimelineEntry(
                row["end_ts"],
                "excursion_end",
                f"Back in range on {logger}" if not row.get("ended_by_gap") else
                f"Excursion on {logger} ended by a data gap",
                None,
                f"{how}; peak {_c(peak)}, {row['degree_minutes']:.0f} °C·min",
                "excursion",
                "info",
            )
        )  # fmt: skip
    return out


def _alert_detail(row: Mapping[str, Any]) -> str | None:
    data = row.get("data") or {}
    kind = row["kind"]
    if kind == "opened":
        return f"{row['severity']}: {row['title']}"
    if kind == "upgraded" and isinstance(data, Mapping):
        return f"{data.get('from')} → {data.get('to')}: {row['title']}"
    if kind == "escalated" and isinstance(data, Mapping):
        tiers = ", ".join(str(t) for t in data.get("tiers") or [])
        return f"to tier {data.get('to')}" + (f" ({tiers} notified)" if tiers else "")
    if kind == "assigned" and isinstance(data, Mapping) and data.get("assignee"):
        return f"to {data['assignee']}" + (f": {row['comment']}" if row.get("comment") else "")
    return row.get("comment") or None


def _alert(row: Mapping[str, Any]) -> TimelineEntry:
    kind, title = _ALERT.get(row["kind"], (row["kind"], row["kind"].capitalize()))
    tone: Tone = _SEVERITY_TONE.get(row["severity"], "info")
    if kind in ("acknowledged", "comment", "assigned", "condition_cleared", "alert_resolved"):
        tone = "info"
    return TimelineEntry(
        row["at"],
        kind,
        title,
        row.get("actor"),
        _alert_detail(row),
        "alert",
        tone,
    )


def _disposition(row: Mapping[str, Any]) -> TimelineEntry:
    decision = row["decision"]
    scope = f"lot {row['lot']}" if row.get("lot") else "whole shipment"
    superseded = " (superseded later)" if row.get("superseded") else ""
    return TimelineEntry(
        row["signed_at"],
        "signed",
        f"Signed: {decision} ({scope}){superseded}",
        f"{row['signer_name']} ({row['signer_username']})",
        f"{row['meaning']}: {row['reason']}",
        "disposition",
        _DECISION_TONE.get(decision, "info"),
    )


def assemble_timeline(
    *,
    created_at: datetime | None,
    created_by: str | None = None,
    lifecycle: Iterable[Mapping[str, Any]] = (),
    excursions: Iterable[Mapping[str, Any]] = (),
    alert_events: Iterable[Mapping[str, Any]] = (),
    dispositions: Iterable[Mapping[str, Any]] = (),
) -> list[TimelineEntry]:
    """Every entry, oldest first (see the module docstring for sources and order).

    ``lifecycle`` rows have ``at, event, actor, reason, data`` (``shipment_events``);
    ``excursions`` the excursion columns (``direction, device_id, start_ts, end_ts, alarm,
    alarm_at, min_c, max_c, degree_minutes, ended_by_gap``, and ``alert_shown``: its alert's
    history is in ``alert_events``); ``alert_events`` have ``at, kind, actor, comment, data``
    and their alert's ``severity, title``; ``dispositions`` the signed records' columns
    (``signed_at, decision, lot, meaning, reason, signer_name, signer_username``, and
    ``superseded``).
    """
    lifecycle = list(lifecycle)
    entries: list[TimelineEntry] = [_lifecycle(r) for r in lifecycle]
    if created_at is not None and not any(r["event"] == "create" for r in lifecycle):
        entries.insert(
            0, TimelineEntry(created_at, "created", "Booked", created_by, None, "lifecycle", "info")
        )
    for row in excursions:
        entries.extend(_excursion(row))
    entries.extend(_alert(r) for r in alert_events)
    entries.extend(_disposition(r) for r in dispositions)
    order = {id(e): i for i, e in enumerate(entries)}
    return sorted(entries, key=lambda e: (e.at, _RANK.get(e.kind, len(KIND_ORDER)), order[id(e)]))


def latest(entries: Sequence[TimelineEntry], kind: str) -> TimelineEntry | None:
    """The newest entry of a kind (None if there is none)."""
    return next((e for e in reversed(entries) if e.kind == kind), None)
