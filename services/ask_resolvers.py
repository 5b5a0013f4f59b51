"""The resolvers of the default answerer (:mod:`services.ask_default`), one per intent.

Each reads through the read-only service functions (and the named queries of
:mod:`db.queries.ask` where no service function counts what is asked) and returns a
:class:`Draft`: the answer's words, its figures, each with the function or query it came from,
and the dashboard pages that show them. A figure with nothing behind it is said as such ("no
excursions on record"), never guessed.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import quote

from coldchain import lifecycle
from coldchain.ask.understand import Question
from db.queries import ask as ask_q
from db.types import Row
from services import alerts as alert_s
from services import ask_inventory as inventory
from services import reports
from services import shipments as shipment_s
from services.ask_draft import (
    Context,
    Draft,
    _ask_which,
    _described,
    _filters,
    _listed,
    _plural,
    _said,
    _shipment_href,
    _state,
    _when,
)

__all__ = ["RESOLVERS"]

_DETAIL = "services.shipments.shipment_detail"
_FIND = "db.queries.ask.find_shipments"


# ---- shipments ------------------------------------------------------------------------------


def _detail(ctx: Context, reference: str) -> Row:
    return shipment_s.shipment_detail(
        ctx.conn, key=reference, offline_factor=ctx.settings.alerts.offline_factor
    )


def _via(reference: str, via: str | None) -> str:
    return f"{via} is shipment {reference}; " if via else ""


def status(ctx: Context) -> Draft:
    """A shipment's state, condition, alerts, excursions and latest reading."""
    d = Draft()
    if not ctx.resolved.shipments:
        return _ask_which(d, "shipment")
    sentences = []
    for reference, via in ctx.resolved.shipments[:3]:
        s = _detail(ctx, reference)
        product = (s.get("product") or {}).get("name")
        what = f"{s['lane']}" + (f", {product}" if product else "")
        reading = s.get("latest_reading")
        latest = (
            f" Latest reading {reading['temp_c']:.1f} °C at {_when(reading['ts'])}."
            if reading and reading.get("temp_c") is not None
            else " No reading yet."
        )
        sentences.append(
            f"{_via(reference, via)}{reference} ({what}): {_state(s['status'])}, "
            f"condition {s['condition']}, {_plural(s['open_alerts'], 'open alert')} "
            f"({s['unacknowledged_alerts']} unacknowledged), "
            f"{_plural(s['n_excursions'], 'excursion')} on record."
            + (f" QA: {s['qa_state']}." if s.get("qa_state") else "")
            + latest
        )
        d.figure(f"{reference} status", _state(s["status"]), _DETAIL)
        d.figure(f"{reference} condition", s["condition"], _DETAIL)
        d.figure(f"{reference} open alerts", s["open_alerts"], _DETAIL)
        d.figure(f"{reference} excursions", s["n_excursions"], _DETAIL)
        if reading and reading.get("temp_c") is not None:
            d.figure(f"{reference} latest temperature", f"{reading['temp_c']:.1f} °C", _DETAIL)
        d.link(f"Shipment {reference}", _shipment_href(reference))
    d.text = " ".join(sentences)
    return d


def where(ctx: Context) -> Draft:
    """Where a shipment is: its last position and what it is doing."""
    if ctx.q.identifiers:
        return inventory.unit(ctx)
    d = Draft()
    if not ctx.resolved.shipments:
        return _ask_which(d, "shipment")
    sentences = []
    for reference, via in ctx.resolved.shipments[:3]:
        s = _detail(ctx, reference)
        lead = f"{_via(reference, via)}{reference} ({s['lane']}) is {_said(s['status'])}"
        if s.get("lat") is not None and s.get("lon") is not None:
            sentences.append(
                f"{lead}; its last position was {s['lat']:.4f}, {s['lon']:.4f} "
                f"(logger {s['current_device_id']}, {_when(s['current_ts'])})."
            )
            d.figure(f"{reference} position", f"{s['lat']:.4f}, {s['lon']:.4f}", _DETAIL)
            d.figure(f"{reference} position at", _when(s["current_ts"]), _DETAIL)
        else:
            sentences.append(f"{lead}; no logger in it has reported a position now.")
            d.used(_DETAIL)
        d.figure(f"{reference} status", _state(s["status"]), _DETAIL)
        d.link(f"Shipment {reference} (route map)", _shipment_href(reference))
    d.text = " ".join(sentences)
    return d


def shipments(ctx: Context) -> Draft:
    """How many shipments match the question's filters, and which."""
    d = Draft()
    if ctx.resolved.shipments and not _has_filters(ctx.q):
        return status(ctx)
    q = ctx.q
    note = ""
    if q.condition:
        total, refs, note = _by_condition(ctx)
        source = "services.shipments.list_shipments"
    else:
        total, rows = ask_q.find_shipments(conn=ctx.conn, filters=_filters(ctx))
        refs, source = [r["reference"] for r in rows], _FIND
    d.figure("Shipments", total, source)
    described = _described(ctx)
    if total == 0:
        d.text = f"No shipments{described}."
    else:
        d.text = f"{_plural(total, 'shipment')}{described}: {_listed(refs[:10], total)}."
    d.text += note
    d.extra["references"] = refs[:10]
    d.link("Fleet", "/")
    for reference in refs[:5]:
        d.link(f"Shipment {reference}", _shipment_href(reference))
    return d


#: How many of the fleet's rows in a condition are read to filter them further.
CONDITION_ROWS = 1000


def _by_condition(ctx: Context) -> tuple[int, list[str], str]:
    """Shipments in a condition (the fleet's definition, :mod:`db.queries.shipments`) that
    match the other filters: the fleet list filters by state, carrier and lane; the rows it
    returns are filtered here by origin, destination, place and product. The condition is now's,
    so a date range does not apply (the answer says so)."""
    q = ctx.q
    both = q.origin and q.destination
    page = shipment_s.list_shipments(
        ctx.conn,
        offline_factor=ctx.settings.alerts.offline_factor,
        condition=q.condition,
        statuses=q.statuses or None,
        carrier=q.carrier,
        lane=f"{q.origin} → {q.destination}" if both else None,
        limit=CONDITION_ROWS,
    )

    def same(a: str | None, b: str | None) -> bool:
        return b is None or (a or "").lower() == b.lower()

    rows = [
        r
        for r in page.items
        if same(r["origin"], q.origin)
        and same(r["destination"], q.destination)
        and (q.place is None or q.place.lower() in (r["origin"].lower(), r["destination"].lower()))
        and (q.product is None or (r["product"] or {}).get("gtin") == q.product[0])
    ]
    further = q.place or q.product or (bool(q.origin) != bool(q.destination))
    total = len(rows) if further else page.total
    notes = []
    if further and page.total > CONDITION_ROWS:
        notes.append(
            f" (Counted among the first {CONDITION_ROWS} of {page.total} in {q.condition}.)"
        )
    if q.period:
        notes.append(f" (The condition is now's: {q.period.label} does not apply.)")
    if q.lane:
        notes.append(
            " (The fleet list filters lanes by their ends: the lane code was not applied.)"
        )
    return total, [r["reference"] for r in rows], "".join(notes)


def _has_filters(q: Question) -> bool:
    return any(
        (q.origin, q.destination, q.place, q.carrier, q.product, q.lane, q.statuses, q.condition)
    )


# ---- excursions and alerts ------------------------------------------------------------------


def excursions(ctx: Context) -> Draft:
    """Excursions of a shipment, or of the shipments matching the filters, in a range."""
    d = Draft()
    period = ctx.q.period
    if ctx.resolved.shipments:
        sentences = []
        for reference, via in ctx.resolved.shipments[:3]:
            shipment_id = shipment_s.find_shipment(ctx.conn, key=reference)
            rows = shipment_s.excursions(ctx.conn, shipment_id=shipment_id)
            if period:
                rows = [
                    r
                    for r in rows
                    if r["start_ts"] < period.until
                    and (r["end_ts"] is None or r["end_ts"] >= period.since)
                ]
            source = "services.shipments.excursions"
            open_ = sum(1 for r in rows if r["end_ts"] is None)
            d.figure(f"{reference} excursions", len(rows), source)
            d.figure(f"{reference} open excursions", open_, source)
            when = f" {period.label}" if period else ""
            if rows:
                worst = max(rows, key=lambda r: r["degree_minutes"] or 0)
                peak = worst["max_c"] if worst["direction"] == "high" else worst["min_c"]
                d.figure(f"{reference} worst excursion peak", f"{peak:.1f} °C", source)
                sentences.append(
                    f"{_via(reference, via)}{reference} had {_plural(len(rows), 'excursion')}"
                    f"{when} ({open_} still open); the worst reached {peak:.1f} °C "
                    f"({worst['degree_minutes']:.0f} °C·min), starting {_when(worst['start_ts'])}."
                )
            else:
                sentences.append(f"{_via(reference, via)}{reference} had no excursions{when}.")
            d.link(f"Shipment {reference}", _shipment_href(reference))
        d.text = " ".join(sentences)
        return d
    n, n_shipments, rows = ask_q.find_excursions(conn=ctx.conn, filters=_filters(ctx))
    source = "db.queries.ask.find_excursions"
    d.figure("Excursions", n, source)
    d.figure("Shipments with excursions", n_shipments, source)
    described = _described(ctx)
    if n == 0:
        d.text = f"No excursions in shipments{described}."
    else:
        refs = [f"{r['reference']} ({r['excursions']})" for r in rows]
        d.text = (
            f"{_plural(n, 'excursion')} in {_plural(n_shipments, 'shipment')}{described}: "
            f"{_listed(refs, n_shipments)}."
        )
    d.extra["references"] = [r["reference"] for r in rows]
    for r in rows[:5]:
        d.link(f"Shipment {r['reference']}", _shipment_href(r["reference"]))
    return d


def alerts(ctx: Context) -> Draft:
    """Alerts by state and severity, of one shipment or all."""
    d = Draft()
    q = ctx.q
    states = list(q.alert_states or ("open", "acknowledged"))
    reference = ctx.resolved.shipments[0][0] if ctx.resolved.shipments else None
    page = alert_s.list_alerts(
        ctx.conn, states=states, severities=list(q.severities) or None, shipment=reference,
        limit=10,
    )  # fmt: skip
    source = "services.alerts.list_alerts"
    single = {"open": "unacknowledged", "acknowledged": "acknowledged", "resolved": "resolved"}
    state_words = single[states[0]] if len(states) == 1 else "unresolved"
    severity = " or ".join(q.severities)
    label = " ".join(w for w in (state_words, severity) if w)
    d.figure(f"{label.capitalize()} alerts", page.total, source)
    where_ = f" of {reference}" if reference else ""
    if page.total == 0:
        d.text = f"No {label} alerts{where_}."
    else:
        items = [f"{a['title']} ({a['severity']}, {a['shipment_reference']})"
                 for a in page.items[:5]]  # fmt: skip
        d.text = f"{_plural(page.total, label + ' alert')}{where_}: {'; '.join(items)}."
    if q.period:
        d.text += " (Alerts are counted whatever their date: the alert list has no date filter.)"
    d.link("Alerts", "/alerts")
    if reference:
        d.link(f"Shipment {reference}", _shipment_href(reference))
    return d


# ---- QA --------------------------------------------------------------------------------------

_DECISIONS = {"released": "release", "quarantined": "quarantine", "rejected": "reject",
              "returned": "return"}  # fmt: skip


def qa(ctx: Context) -> Draft:
    """Who signed a shipment's disposition; decisions signed in a range; what awaits review."""
    d = Draft()
    q = ctx.q
    if ctx.resolved.shipments:
        sentences = []
        for reference, via in ctx.resolved.shipments[:3]:
            records = reports.dispositions(ctx.conn, key=reference).records
            source = "services.reports.dispositions"
            d.figure(f"{reference} signed dispositions", len(records), source)
            if not records:
                s = _detail(ctx, reference)
                sentences.append(
                    f"{_via(reference, via)}{reference} has no signed disposition; it is "
                    f"{_said(s['status'])}."
                )
            else:
                last = records[-1]
                sentences.append(
                    f"{_via(reference, via)}{reference}: {last['decision']} signed by "
                    f"{last['signer_name']} ({last['signer_role']}) at "
                    f"{last['signed_at']}"
                    + (f" for lot {last['lot']}" if last["lot"] else "")
                    + (f"; {len(records) - 1} earlier." if len(records) > 1 else ".")
                )
                d.figure(f"{reference} signed by", last["signer_name"], source)
            d.link(f"QA review of {reference}", f"/qa/{quote(reference, safe='')}")
        d.text = " ".join(sentences)
        return d
    decided = [_DECISIONS[w] for w in ("released", "quarantined", "rejected", "returned")
               if w in q.flags]  # fmt: skip
    if decided or q.period:
        n, rows = ask_q.find_decisions(
            conn=ctx.conn,
            decisions=decided or None,
            since=q.period.since if q.period else None,
            until=q.period.until if q.period else None,
        )
        source = "db.queries.ask.find_decisions"
        words = " or ".join(decided) if decided else "disposition"
        when = f" {q.period.label}" if q.period else ""
        d.figure(f"Signed {words} decisions{when}", n, source)
        items = [f"{r['reference']} ({r['decision']}, {r['signer_name']})" for r in rows]
        d.text = f"{_plural(n, words + ' decision')} signed{when}" + (
            f": {_listed(items, n)}." if items else "."
        )
        d.extra["references"] = [r["reference"] for r in rows]
        d.link("QA review", "/qa")
        return d
    states = q.statuses or ("arrived", "under_review")
    total, rows = ask_q.find_shipments(
        conn=ctx.conn, filters=ask_q.Filters(statuses=states), limit=10
    )
    refs = [r["reference"] for r in rows]
    label = " or ".join(lifecycle.qa_state(s) or _said(s) for s in states)
    d.figure(f"Shipments {label}", total, _FIND)
    d.text = f"{_plural(total, 'shipment')} {label}" + (
        f": {_listed(refs, total)}." if refs else "."
    )
    d.extra["references"] = refs
    d.link("QA review", "/qa")
    return d


RESOLVERS: dict[str, Callable[[Context], Draft]] = {
    "status": status,
    "where": where,
    "shipments": shipments,
    "excursions": excursions,
    "alerts": alerts,
    "unit": inventory.unit,
    "lot": inventory.lot,
    "loggers": inventory.logger_answer,
    "qa": qa,
    "audit": inventory.audit_answer,
    "people": inventory.people,
}
