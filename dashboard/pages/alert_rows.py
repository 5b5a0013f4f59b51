"""The alerts page's rows and summary cards: pure functions of the board's rows and ``now``.

A row answers what on-call asks first: how bad (the severity, in words as well as colour), is it
still happening (the alert's state *and* its condition: "open · still out of range" is not
"open · condition cleared"), since when (the product left its range, then the alarm), how hot or
cold now and at worst, who has been told (tier and recipients, delivered or failed) and who has
it. Its actions are in the row itself: the comment box belongs to the row, so a comment cannot
land on another alert (assets/actions.js sends the row's comment and pick with the click).
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from dash import dcc, html

from coldchain import severity
from dashboard import ids
from dashboard.pages import (
    badge,
    data_attrs,
    fmt_age,
    fmt_duration,
    fmt_temp,
    fmt_ts,
    shipment_href,
)

HEADERS = [
    "Severity",
    "Shipment and alert",
    "State and condition",
    "Temperature",
    "Escalation and notices",
    "People",
]
#: The column of the row's own actions, for who may act.
ACTIONS_HEADER = "Actions"


def headers(*, can_act: bool) -> list[str]:
    """The table's column names (the actions column only for who may act)."""
    return [*HEADERS, ACTIONS_HEADER] if can_act else list(HEADERS)


#: How a recipient's latest notification reads.
_STATUS_WORDS = {
    "delivered": "delivered",
    "failed": "failed",
    "pending": "retrying",
    "held": "held back (flood control)",  # until its digest is sent (alerts/flood.py)
}
_STATUS_MARKS = {"delivered": "✓", "failed": "✗", "pending": "…", "held": "⏸"}


def condition_text(row: Mapping[str, Any]) -> str:
    """``still out of range``, ``back in range <time>, clearing``, ``condition cleared <time>``
    (``condition`` wording for rules other than a temperature range)."""
    temperature = row.get("peak_high_c") is not None or row.get("peak_low_c") is not None
    condition = row["condition"]
    if condition == "active":
        return "still out of range" if temperature else "condition still holds"
    when = fmt_ts(row["condition_ended_at"])
    if condition == "ended":
        return (
            f"back in range {when}, clearing"
            if temperature
            else f"condition ended {when}, clearing"
        )
    return f"condition cleared {when}"


def since_text(row: Mapping[str, Any], now: datetime) -> str | None:
    """``out of range since <time> · 1 h 20 min`` (until now, or until it ended)."""
    since = row["condition_since"]
    if since is None:
        return None
    until = row["condition_ended_at"] or now
    temperature = row.get("peak_high_c") is not None or row.get("peak_low_c") is not None
    what = "out of range since" if temperature else "since"
    return f"{what} {fmt_ts(since)} · {fmt_duration((until - since).total_seconds())}"


def peak_text(row: Mapping[str, Any]) -> str | None:
    """``peak 12.8 °C`` (high excursions), ``lowest 1.2 °C`` (low ones), both when both."""
    parts = []
    if row.get("peak_high_c") is not None:
        parts.append(f"peak {fmt_temp(row['peak_high_c'])}")
    if row.get("peak_low_c") is not None:
        parts.append(f"lowest {fmt_temp(row['peak_low_c'])}")
    return " · ".join(parts) or None


def notified_lines(row: Mapping[str, Any]) -> list[html.Div]:
    """One line per recipient: ``✓ email oncall@… · tier 1 · delivered``."""
    lines = []
    for n in row.get("notified") or []:
        status = str(n.get("status"))
        text = (
            f"{_STATUS_MARKS.get(status, '')} {n.get('channel')} {n.get('target')} · "
            f"tier {n.get('tier')} · {_STATUS_WORDS.get(status, status)}"
        )
        lines.append(
            html.Div(
                text,
                className=f"sub notified notified-{status}",
                title=str(n.get("error") or ""),
                **data_attrs(status=status),
            )
        )
    return lines


def _person(username: str | None, names: Mapping[str, str]) -> str:
    if not username:
        return "—"
    return names.get(username, username)


def _revision(row: Mapping[str, Any]) -> str:
    """Changes when a person acts on the alert (state, assignee), not when the engine does: the
    row's boxes are new (empty) after an action, and keep what is being typed otherwise."""
    key = f"{row['state']}|{row['assignee'] or ''}|{row['acked_by'] or ''}"
    return format(zlib.crc32(key.encode()), "x")


def _attrs(label: str, **data: str) -> Any:
    """An accessible name and ``data-*`` attributes, as html component keyword arguments."""
    return {"aria-label": label, **data_attrs(**data)}


def _button(alert_id: int, action: str, label: str, className: str) -> html.Button:
    return html.Button(
        label,
        className=f"btn {className}",
        type="button",
        **data_attrs(alert_id=str(alert_id), alert_action=action),
    )


def _actions(
    row: Mapping[str, Any], people: Sequence[Mapping[str, Any]], comment_max: int
) -> list[Any]:
    alert_id = int(row["id"])
    if row["state"] == "resolved":
        return []
    revision = _revision(row)
    buttons = []
    if row["state"] == "open":
        buttons.append(_button(alert_id, "acknowledge", "Acknowledge", ids.BTN_ACK))
    buttons.append(_button(alert_id, "resolve", "Resolve", ids.BTN_RESOLVE))
    # html.Textarea / html.Select (not dcc): plain, uncontrolled elements, so the browser keeps
    # what is typed or picked while the table re-renders around them (their ids change only
    # when a person has acted on the alert); the click sends it (assets/actions.js).
    return [
        html.Textarea(
            id=f"{ids.ALERT_COMMENT}-{alert_id}-{revision}",
            className=ids.ALERT_COMMENT,
            rows=2,
            placeholder="Comment (required to acknowledge)",
            title="What was done, or why: kept in the alert's history and the audit trail",
            maxLength=comment_max,
            **_attrs(f"Comment on alert {alert_id}", alert_comment=str(alert_id)),
        ),
        html.Div(buttons, className="row-buttons"),
        html.Div(
            className="row-assign",
            children=[
                html.Select(
                    id=f"{ids.ALERT_ASSIGNEE}-{alert_id}-{revision}",
                    className=ids.ALERT_ASSIGNEE,
                    children=[html.Option("Assign to…", value="")]
                    + [
                        html.Option(f"{p['full_name']} ({p['role']})", value=p["username"])
                        for p in people
                    ],
                    **_attrs(f"Person to assign alert {alert_id} to", alert_assignee=str(alert_id)),
                ),
                _button(alert_id, "assign", "Assign", ids.BTN_ASSIGN),
            ],
        ),
    ]


def alert_row(
    row: Mapping[str, Any],
    now: datetime,
    *,
    can_act: bool = True,
    people: Sequence[Mapping[str, Any]] | None = None,
    outcome: Mapping[str, Any] | None = None,
    comment_max: int = 2000,
) -> html.Tr:
    """One alert as a table row (a board row of :func:`services.alerts.alert_board`), with its
    own comment box and actions when the person may act, and ``outcome``: the last action's
    message when it was on this alert."""
    alert_id = int(row["id"])
    names = {p["username"]: p["full_name"] for p in people or []}
    sev = str(row["severity"])
    since = since_text(row, now)
    condition: list[Any] = [
        badge(row["state"], row["state"]),
        html.Span(f" · {condition_text(row)}", className=f"condition condition-{row['condition']}"),
    ]
    if since:
        condition.append(html.Div(since, className="sub"))
    temps: list[Any] = []
    if row.get("current_c") is not None:
        temps.append(html.Div(f"now {fmt_temp(row['current_c'])}", className="temp-now"))
        temps.append(html.Div(fmt_age(row["current_at"], now), className="sub"))
    if (peak := peak_text(row)) is not None:
        temps.append(html.Div(peak, className="temp-peak"))
    people_cell: list[Any] = [
        html.Div(f"assigned to {_person(row['assignee'], names)}", className="assignee")
        if row["assignee"]
        else html.Div("not assigned", className="sub")
    ]
    if row["acked_by"]:
        people_cell.append(
            html.Div(f"acknowledged by {_person(row['acked_by'], names)}", className="acked")
        )
        if row["ack_comment"]:
            people_cell.append(html.Div(f"“{row['ack_comment']}”", className="sub ack-comment"))
    if row["state"] == "resolved" and row["resolved_by"]:
        people_cell.append(
            html.Div(f"resolved by {_person(row['resolved_by'], names)}", className="sub")
        )
    actions = _actions(row, people or [], comment_max) if can_act else []
    if outcome is not None and outcome.get("alert") == alert_id:
        actions.append(
            html.Div(
                str(outcome.get("message") or ""),
                className=f"{ids.ALERT_FEEDBACK} {'ok' if outcome.get('ok') else 'error'}",
                role="status",
            )
        )
    tier = int(row["escalation_level"] or 0)
    return html.Tr(
        id=f"alert-row-{alert_id}",
        className=f"{ids.ALERT_ROW} state-{row['state']} severity-{sev}",
        **data_attrs(
            alert_id=str(alert_id),
            state=str(row["state"]),
            severity=sev,
            condition=str(row["condition"]),
        ),
        children=[
            html.Td(badge(sev.capitalize(), sev), className="cell-severity"),
            html.Td(
                [
                    html.Div(
                        [
                            dcc.Link(
                                row["shipment_reference"],
                                href=shipment_href(row["shipment_reference"]),
                                className="alert-shipment",
                            )
                            if row["shipment_reference"] is not None
                            # A system alert (ingest stalled) is about the fleet, not a shipment.
                            else html.Span("Fleet", className="alert-shipment"),
                            html.Span(f" · {row['device_id']}" if row["device_id"] else ""),
                        ]
                    ),
                    html.Div(row["title"], className="alert-title"),
                    html.Div(
                        f"alarm {fmt_ts(row['triggered_at'])} · {fmt_age(row['triggered_at'], now)}",
                        className="sub cell-alarm",
                    ),
                ],
                className="wrap cell-alert",
            ),
            html.Td(condition, className=f"{ids.CELL_CONDITION} wrap"),
            html.Td(temps or "—", className="cell-temps"),
            html.Td(
                [
                    html.Div("not escalated" if tier == 0 else f"escalated to tier {tier}"),
                    *(notified_lines(row) or [html.Div("nobody notified yet", className="sub")]),
                    *(
                        html.Div(f"⚠ {text}", className="sub notified notified-warning")
                        for text in row.get("notification_warnings") or []
                    ),
                ],
                className="cell-escalation wrap",
            ),
            html.Td(people_cell, className="cell-people wrap"),
            *([html.Td(actions, className="cell-actions")] if can_act else []),
        ],
    )


def summary_cards(rows: list[dict[str, Any]], now: datetime) -> list[html.Div]:
    """Unresolved alerts per severity, with the age of the oldest."""
    cards = []
    for name in severity.STRONGEST_FIRST:
        mine = [r for r in rows if r["severity"] == name]
        oldest = min((r["triggered_at"] for r in mine), default=None)
        cards.append(
            html.Div(
                className=f"summary-card summary-{name}",
                children=[
                    html.Div(str(len(mine)), className="summary-value"),
                    html.Div(name.capitalize(), className="summary-label"),
                    html.Div(
                        f"oldest {fmt_age(oldest, now)}" if oldest else "none",
                        className="summary-sub",
                    ),
                ],
            )
        )
    return cards
