"""What the QA pages show, as pure functions of plain values: the index (the exceptions queue,
then the other shipments) and, on a shipment's review, the report's summary and its signed
dispositions. The page (layout, callbacks, downloads, signing) is :mod:`dashboard.pages.qa`.

The index's words: a shipment's state in plain words (:data:`coldchain.lifecycle.STATE_LABELS`),
its condition as the fleet shows it (:data:`dashboard.figures.CONDITION_LABELS`, the same read),
the severity the queue ranks it by (``risk_severity``, :func:`services.reports.qa_index`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from dash import dcc, html

from coldchain.lifecycle import STATE_LABELS
from dashboard.figures import CONDITION_LABELS
from dashboard.pages import (
    badge,
    data_attrs,
    fmt_age,
    fmt_duration,
    fmt_temp,
    fmt_ts,
    shipment_href,
    table,
)
from dashboard.pages.shipment_life import STATE_BADGE

QA_RECORD_BUTTON = "qa-record-button"  # pattern-matching type, {"type": ..., "id": disposition}

Href = Callable[[str], str]
_DECISIONS = {
    "release": "Released",
    "quarantine": "Quarantined",
    "reject": "Rejected",
    "return": "Returned",
}


def state_label(status: str) -> str:
    """A shipment's state in plain words (the raw name for a state this version does not know)."""
    return next((label for state, label in STATE_LABELS.items() if state == status), status)


def _state_badge(status: str) -> html.Span:
    return badge(state_label(status), STATE_BADGE.get(status, "info"))


def _excursions_text(row: dict[str, Any]) -> str:
    n = row["excursions"]
    if not n:
        return "none"
    still = f", {row['open_excursions']} still out" if row["open_excursions"] else ""
    return f"{n} ({row['alarmed_excursions']} alarmed{still})"


def _verdict_cell(row: dict[str, Any]) -> Any:
    verdict = row["verdict"]
    kind = {"exception": "alarm", "conforming": "ok"}.get(verdict, "offline")
    return badge(verdict.capitalize(), kind)


def _disposition_text(row: dict[str, Any]) -> str:
    decision = row.get("decision")
    lots = row.get("lot_decisions") or 0
    text = "not signed" if decision is None else _DECISIONS.get(decision, decision)
    return f"{text} (+{lots} lot{'s' if lots != 1 else ''})" if lots else text


def _share_text(share: float | None) -> str:
    if share is None:
        return "—"
    return "over budget" if share == float("inf") else f"{share * 100:.0f} %"


def queue_table(rows: Sequence[dict[str, Any]], now: datetime, qa_href: Href) -> html.Div:
    """The exceptions queue: the shipments needing a decision, riskiest first; ``qa_href`` gives
    a shipment's review page."""
    body = []
    for rank, r in enumerate(rows, start=1):
        sev = r["risk_severity"]
        body.append(
            html.Tr(
                [
                    html.Td(dcc.Link(r["reference"], href=qa_href(r["reference"]))),
                    html.Td(_state_badge(r["status"])),
                    html.Td(badge(sev.capitalize(), sev) if sev else "—"),
                    html.Td(_excursions_text(r)),
                    html.Td(fmt_duration(r["time_out_s"]) if r["excursions"] else "—"),
                    html.Td(fmt_temp(r["peak_c"])),
                    html.Td(_share_text(r.get("max_budget_share"))),
                    html.Td(_verdict_cell(r)),
                    html.Td(_disposition_text(r)),
                    html.Td(fmt_age(r.get("arrived_at"), now) if r.get("arrived_at") else "—"),
                    html.Td(badge(CONDITION_LABELS[r["condition"]], r["condition"])),
                    html.Td(dcc.Link("live view", href=shipment_href(r["reference"]))),
                ],
                className="qa-queue-row",
                **data_attrs(
                    reference=r["reference"],
                    status=r["status"],
                    rank=str(rank),
                    severity=sev or "",
                ),
            )
        )
    return table(
        [
            "Shipment",
            "Status",
            "Severity",
            "Excursions",
            "Out of range",
            "Peak",
            "Budget",
            "Verdict",
            "Disposition",
            "Waiting",
            "Now",
            "",
        ],
        body,
        empty="Nothing is waiting for a QA decision.",
        id="qa-queue",
    )


def rest_table(rows: Sequence[dict[str, Any]], qa_href: Href) -> html.Div:
    """The other shipments, those needing attention first (the fleet's order)."""
    body = [
        html.Tr(
            [
                html.Td(dcc.Link(r["reference"], href=qa_href(r["reference"]))),
                html.Td(r["lane"]),
                html.Td(_state_badge(r["status"])),
                html.Td((r["product"] or {}).get("name") or "—"),
                html.Td(_excursions_text(r)),
                html.Td(fmt_temp(r["peak_c"])),
                html.Td(_disposition_text(r)),
                html.Td(badge(CONDITION_LABELS[r["condition"]], r["condition"])),
                html.Td(dcc.Link("live view", href=shipment_href(r["reference"]))),
            ],
            className="qa-rest-row",
            **data_attrs(reference=r["reference"], status=r["status"]),
        )
        for r in rows
    ]
    return table(
        ["Shipment", "Lane", "Status", "Product", "Excursions", "Peak", "Disposition", "Now", ""],
        body,
        empty="No other shipment.",
        id="qa-rest",
    )


def index_view(
    index_queue: Sequence[dict[str, Any]],
    rest: Sequence[dict[str, Any]],
    now: datetime,
    qa_href: Href,
) -> list[Any]:
    """The index: the queue with its explanation, then the others."""
    return [
        html.H2(f"Waiting for a QA decision ({len(index_queue)})"),
        html.P(
            "Shipments back under control that QA has not closed: arrived or under review "
            "(report not signed yet), or quarantined with an excursion or an exception verdict. "
            "Riskiest first: the worst alert (an exception verdict counts as major), then time "
            "out of range, then stability budget used, then the longest waiting since arrival. "
            "Open a shipment to review and sign its report.",
            className="muted",
        ),
        queue_table(index_queue, now, qa_href),
        html.H2("Other shipments", style={"marginTop": "20px"}),
        rest_table(rest, qa_href),
    ]


def _loggers_table(ev: dict[str, Any]) -> html.Div:
    rows = []
    for lg in ev["loggers"]:
        due = lg["calibration_due"] or "—"
        rows.append(
            html.Tr(
                [
                    html.Td(lg["device_id"]),
                    html.Td(f"{lg['calibration_cert'] or '—'}, due {due}"),
                    html.Td(badge("overdue", "alarm") if lg["calibration_overdue"] else "ok"),
                    html.Td(f"{lg['interval_s']} s"),
                    html.Td(f"{lg['readings']} / {lg['expected_readings']}"),
                    html.Td(
                        "—" if lg["completeness"] is None else f"{lg['completeness'] * 100:.1f} %"
                    ),
                    html.Td(f"{len(lg['gaps'])} ({fmt_duration(lg['time_in_gaps_s'])})"),
                    html.Td(_mkt_text(lg, ev)),
                    html.Td(_budget_text(lg)),
                ]
            )
        )
    return table(
        ["Logger", "Calibration", "", "Interval", "Readings", "Complete", "Gaps", "MKT", "Budget"],
        rows,
        empty="No logger was assigned.",
    )


def _mkt_text(lg: dict[str, Any], ev: dict[str, Any]) -> str:
    window = lg["mkt"]["window"]
    if window is None:
        return "—"
    limit = ev["rules"]["mkt"]["limit_c"]
    verdict = "" if limit is None else (" (above limit)" if window["above_limit"] else " (within)")
    return f"{window['mkt_c']:.2f} °C over {ev['rules']['mkt']['window_h']:g} h{verdict}"


def _budget_text(lg: dict[str, Any]) -> str:
    b = lg["budget"]
    if b is None:
        return "—"
    return f"{b['share_used'] * 100:.1f} % used ({b['status']})"


def _excursions_table(ev: dict[str, Any]) -> html.Div:
    rows = [
        html.Tr(
            [
                html.Td(e["device_id"]),
                html.Td(e["direction"]),
                html.Td(fmt_ts(parse_iso(e["start"]))),
                html.Td("open" if e["open"] else fmt_ts(parse_iso(e["end"]))),
                html.Td(fmt_duration(e["duration_s"])),
                html.Td(fmt_temp(e["min_c"])),
                html.Td(fmt_temp(e["max_c"])),
                html.Td(f"{e['degree_minutes']:g}"),
                html.Td("yes" if e["alarm"] else "no"),
            ]
        )
        for e in ev["excursions"]
    ]
    return table(
        ["Logger", "Dir", "Start", "End", "Duration", "Min", "Max", "°C·min", "Alarm"],
        rows,
        empty="No excursion.",
    )


def parse_iso(value: str | None) -> datetime | None:
    """An ISO text of the report (``…Z``) as an aware datetime; None for None."""
    return None if value is None else datetime.fromisoformat(value.replace("Z", "+00:00"))


def summary(doc: dict[str, Any]) -> list[Any]:
    """What the reviewer reads on screen: the report's main figures."""
    ev = doc["evidence"]
    product = ev["product"] or {}
    ship = ev["shipment"]
    lots = ", ".join(
        f"{x['lot']} (exp. {x['expiry'] or '—'}, {x['units']} units)" for x in ev["lots"]
    )
    totals = ev["totals"]
    rules = ev["rules"]
    t = rules["temperature"] or {}
    return [
        html.P(
            [
                html.Strong(product.get("name") or "No product"),
                f" — GTIN {product.get('gtin') or '—'} — labelled range "
                f"{product.get('labelled_range') or '—'}",
            ]
        ),
        html.P(f"Lots: {lots or 'none recorded'}"),
        html.P(
            f"{ship['lane']} · {state_label(ship['status'])} · carrier {ship['carrier'] or '—'} · "
            f"{len(ev['legs'])} leg(s)"
        ),
        html.P(
            f"Rules as evaluated: range {fmt_temp(t.get('low_c'))} to {fmt_temp(t.get('high_c'))}, "
            f"freeze {fmt_temp(t.get('freeze_c'))}, alarm delay "
            f"{fmt_duration(t.get('alarm_delay_s'))}; MKT ΔH {rules['mkt']['delta_h_j_mol']:g} "
            f"J/mol, {rules['mkt']['weighting']} weighting, {rules['mkt']['window_h']:g} h window",
            className="muted",
        ),
        html.H2(
            f"Excursions: {totals['excursions']} ({totals['alarmed_excursions']} alarmed), "
            f"{fmt_duration(totals['time_out_of_range_s'])} out of range"
        ),
        _excursions_table(ev),
        html.H2("Loggers, completeness, MKT and budget"),
        _loggers_table(ev),
        html.P(
            f"{len(ev['alerts'])} alert(s); {totals['gaps']} data gap(s) "
            f"({fmt_duration(totals['time_in_gaps_s'])}); {totals['readings']} readings.",
            className="muted",
        ),
    ]


def dispositions_view(records: list[dict[str, Any]]) -> list[Any]:
    """Every signed disposition with its signature; superseded ones stay, marked."""
    if not records:
        return [html.P("No disposition has been signed yet.", className="muted")]
    out = []
    for d in reversed(records):
        scope = f"lot {d['lot']}" if d["lot"] else "whole shipment"
        state = (
            badge("current", "ok")
            if d["current"]
            else badge(f"superseded by #{d['superseded_by']}", "offline")
        )
        out.append(
            html.Div(
                className="disposition",
                style={"borderTop": "1px solid #e5e7eb", "padding": "8px 0"},
                **data_attrs(
                    disposition_id=str(d["id"]),
                    decision=d["decision"],
                    current="true" if d["current"] else "false",
                ),
                children=[
                    html.Div(
                        [html.Strong(f"#{d['id']} {d['decision'].upper()}"), f" — {scope} ", state]
                    ),
                    html.Div(f"Reason: {d['reason']}"),
                    html.Div(d["signature"], className="signature"),
                    html.Div(
                        f"Report hash {d['report_hash']} · signature {d['signature_hash']}",
                        className="muted",
                        style={"fontSize": "11px", "wordBreak": "break-all"},
                    ),
                    html.Button(
                        "Signed record (PDF)",
                        id={"type": QA_RECORD_BUTTON, "id": d["id"]},
                        className="btn",
                        n_clicks=0,
                        style={"marginTop": "4px", "fontSize": "12px"},
                    ),
                ],
            )
        )
    return out
