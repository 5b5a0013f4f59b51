"""The default answerer's resolvers for what is not a shipment: units and pallets (any GS1
form), lots, loggers, and the restricted reads (the audit trail: ``audit.read``; people and API
keys: ``admin``), which a caller without the permission is told they may not see, with no data.
"""

from __future__ import annotations

from coldchain.calibration import DUE_SOON, calibration_status
from coldchain.errors import NotFoundError
from coldchain.thermal.limits import is_offline
from db.queries import ask as ask_q
from security.roles import Permission, roles_with
from services import accounts, audit, loggers, trace
from services import shipments as shipment_s
from services.ask_draft import (
    Context,
    Draft,
    _ask_which,
    _listed,
    _passport_href,
    _plural,
    _said,
    _shipment_href,
    _when,
)

__all__ = ["audit_answer", "logger_answer", "lot", "people", "unit"]


# ---- units and lots --------------------------------------------------------------------------


def unit(ctx: Context) -> Draft:
    """A unit or pallet (any GS1 form): where it is, and whether it may be sold."""
    d = Draft()
    ids = [(raw, p) for raw, p in ctx.q.identifiers if p.kind in ("sgtin", "sscc")]
    if not ids:
        if ctx.q.lot or any(p.lot for _, p in ctx.q.identifiers):
            return lot(ctx)
        return _ask_which(d, "unit or pallet (its SSCC, SGTIN, Digital Link or EPC)")
    sentences = []
    for raw, _parsed in ids[:3]:
        verdict = trace.verify(ctx.conn, identifier=raw, today=ctx.now.date())
        d.used("services.trace.verify")
        if verdict.status in ("unknown", "invalid") or verdict.epc is None:
            sentences.append(f"I could not find the unit {raw}: {'; '.join(verdict.reasons)}.")
            continue
        carried = ask_q.unit_shipments(conn=ctx.conn, epc=verdict.epc)
        d.used("db.queries.ask.unit_shipments")
        what = "pallet" if verdict.kind == "sscc" else "unit"
        d.figure(f"{raw} verdict", verdict.status, "services.trace.verify")
        why = "; ".join(verdict.reasons)
        text = f"The {what} {verdict.epc} is {verdict.status}" + (f" ({why})" if why else "")
        if carried:
            last = carried[0]
            on_board = "on board" if last["on_board_to"] is None else "last carried"
            text += (
                f"; {on_board} in shipment {last['reference']} ({last['origin']} → "
                f"{last['destination']}, {_said(last['status'])}) since "
                f"{_when(last['on_board_from'])}."
            )
            d.figure(f"{raw} shipment", last["reference"], "db.queries.ask.unit_shipments")
            d.link(f"Shipment {last['reference']}", _shipment_href(last["reference"]))
        else:
            text += "; no shipment has carried it."
        sentences.append(text)
        d.link("Passport", _passport_href(raw))
    d.text = " ".join(sentences)
    return d


def lot(ctx: Context) -> Draft:
    """Which shipments carried a lot, and the excursions its units went through."""
    d = Draft()
    lot_id = ctx.q.lot or next((p.lot for _, p in ctx.q.identifiers if p.lot), None)
    if lot_id is None:
        return _ask_which(d, "lot (its number, or (01)GTIN(10)LOT)")
    gtin = ctx.q.product[0] if ctx.q.product else None
    rows = ask_q.lot_shipments(conn=ctx.conn, lot=lot_id, gtin=gtin)
    source = "db.queries.ask.lot_shipments"
    lot_id = rows[0]["lot"] if rows else lot_id
    d.figure(f"Shipments with lot {lot_id}", len(rows), source)
    refs = [r["reference"] for r in rows]
    if not rows:
        d.text = f"I could not find lot {lot_id} in any shipment."
        return d
    d.text = (
        f"Lot {lot_id} was carried by {_plural(len(rows), 'shipment')}: {_listed(refs, len(refs))}."
    )
    if gtin:
        try:
            impact = trace.lot_impact(ctx.conn, gtin=gtin, lot=lot_id)
        except NotFoundError:
            impact = None
        d.used("services.trace.lot_impact")
        if impact is not None:
            n = len(impact["excursions"])
            d.figure(f"Excursions lot {lot_id} was exposed to", n, "services.trace.lot_impact")
            d.text += f" Its units were exposed to {_plural(n, 'excursion')}."
    for reference in refs[:5]:
        d.link(f"Shipment {reference}", _shipment_href(reference))
    return d


# ---- loggers ---------------------------------------------------------------------------------


def logger_answer(ctx: Context) -> Draft:
    """One logger's last word, or the loggers with a low battery, due for calibration, offline."""
    d = Draft()
    today = ctx.now.date()
    if ctx.resolved.loggers:
        sentences = []
        for device_id in ctx.resolved.loggers[:3]:
            row = loggers.get_logger(ctx.conn, device_id)
            source = "services.loggers.get_logger"
            battery = row["battery"]
            cal = calibration_status(row["calibration_due"], today)
            riding = row["current_shipment_reference"]
            sentences.append(
                f"Logger {device_id} was last seen {_when(row['last_seen'])}"
                + (f", battery {battery:.0%}" if battery is not None else ", battery unknown")
                + (f", calibration {cal} ({row['calibration_due']})" if cal else "")
                + (f", riding in {riding}." if riding else ", in no shipment now.")
            )
            d.figure(f"{device_id} last seen", _when(row["last_seen"]), source)
            d.figure(
                f"{device_id} battery", "unknown" if battery is None else f"{battery:.0%}", source
            )
            if riding:
                d.link(f"Shipment {riding}", _shipment_href(riding))
        d.text = " ".join(sentences)
        d.link("Loggers", "/loggers")
        return d
    rows = [r for r in loggers.list_loggers(ctx.conn) if r["retired_at"] is None]
    source = "services.loggers.list_loggers"
    flags = ctx.q.flags
    threshold = ctx.settings.alerts.battery_threshold
    if "battery" in flags:
        found = [r for r in rows if r["battery"] is not None and r["battery"] < threshold]
        what = f"with a battery below {threshold:.0%}"
    elif "calibration" in flags:
        found = [
            r
            for r in rows
            if calibration_status(r["calibration_due"], today) in ("expired", "due soon")
        ]
        what = f"due for calibration (expired or due within {DUE_SOON.days} days)"
    elif "offline" in flags or "condition" in flags:
        factor = ctx.settings.alerts.offline_factor
        found = [
            r
            for r in rows
            if r["current_shipment_id"] is not None
            and is_offline(r["last_seen"], interval_s=r["interval_s"], factor=factor, now=ctx.now)
        ]
        what = f"riding in a shipment and offline (silent for over {factor:g} × their interval)"
    else:
        found = [r for r in rows if r["current_shipment_id"] is not None]
        what = "riding in a shipment now"
        d.figure("Loggers registered", len(rows), source)
    ids = [r["device_id"] for r in found]
    d.figure(f"Loggers {what}", len(found), source)
    d.text = f"{_plural(len(found), 'logger')} {what}" + (
        f": {_listed(ids[:10], len(ids))}." if ids else "."
    )
    d.extra["loggers"] = ids
    d.link("Loggers", "/loggers")
    return d


# ---- restricted: the audit trail, people and keys --------------------------------------------


def _refused(d: Draft, ctx: Context, what: str, permission: Permission) -> Draft:
    roles = ", ".join(roles_with(permission))
    d.text = (
        f"You may not see {what}: it needs the '{permission}' permission, which roles {roles} "
        f"have (you are {ctx.caller.role})."
    )
    d.extra["refused"] = permission
    return d


def audit_answer(ctx: Context) -> Draft:
    """The newest entries of the audit trail (of a shipment, if one is named)."""
    d = Draft()
    if not ctx.caller.can("audit.read"):
        return _refused(d, ctx, "the audit trail", "audit.read")
    entity = entity_id = None
    if ctx.resolved.shipments:
        reference = ctx.resolved.shipments[0][0]
        entity = "shipments"
        entity_id = str(shipment_s.find_shipment(ctx.conn, key=reference))
    rows, total = audit.list_entries(
        ctx.conn, ctx.caller, entity=entity, entity_id=entity_id, limit=5
    )
    source = "services.audit.list_entries"
    d.figure("Audit entries", total, source)
    items = [f"{r['at']:%Y-%m-%d %H:%M} {r['actor']} {r['action']} {r['entity']}" for r in rows]
    scope = f" about {ctx.resolved.shipments[0][0]}" if entity else ""
    d.text = f"{_plural(total, 'audit entry', 'audit entries')}{scope}" + (
        f"; the newest: {'; '.join(items)}." if items else "."
    )
    d.link("Administration", "/admin")
    return d


def people(ctx: Context) -> Draft:
    """How many people and API keys there are (admin only)."""
    d = Draft()
    if not ctx.caller.can("admin"):
        return _refused(d, ctx, "the people and API keys", "admin")
    if ctx.q.flags & {"keys", "key"}:
        keys = accounts.list_api_keys(ctx.conn, ctx.caller)
        live = [k for k in keys if k.get("revoked_at") is None]
        d.figure("API keys", len(keys), "services.accounts.list_api_keys")
        d.figure("Live API keys", len(live), "services.accounts.list_api_keys")
        d.text = f"{_plural(len(keys), 'API key')}, {len(live)} not revoked."
        d.link("API keys", "/admin/api-keys")
        return d
    users = accounts.list_users(ctx.conn, ctx.caller)
    active = [u for u in users if u.get("active", True)]
    d.figure("People", len(users), "services.accounts.list_users")
    d.figure("Active people", len(active), "services.accounts.list_users")
    by_role = {
        r: sum(1 for u in active if u["role"] == r) for r in ("viewer", "operator", "qa", "admin")
    }
    d.text = (
        f"{_plural(len(users), 'person', 'people')}, {len(active)} active ("
        + ", ".join(f"{n} {r}" for r, n in by_role.items() if n)
        + ")."
    )
    d.link("People", "/admin/people")
    return d
