"""A passport as plain text, for the terminal (``coldchain passport ID``). Pure."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from traceability.passport import Passport
from traceability.verify import Verification

__all__ = ["passport_text"]


def _ts(value: datetime | date | None) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M UTC")
    return value.isoformat()


def _dur(value: timedelta | None) -> str:
    if value is None:
        return "-"
    minutes = int(value.total_seconds() // 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min"


def passport_text(p: Passport, v: Verification) -> str:
    """Verdict, identity, conditions, excursions and custody, one section each."""
    u, f = p.unit, p.figures
    lines = [f"{u.epc}  [{v.status.upper()}]"]
    lines += [f"  - {r}" for r in v.reasons]
    lines.append("")
    product = p.product
    lines.append(
        f"Product   {product.name} ({product.gtin}), range {product.temp_min_c}..{product.temp_max_c} °C"
        if product
        else "Product   unknown"
    )
    lines.append(
        f"Lot       {u.lot or '-'}   expiry {_ts(u.expiry)}   commissioned {_ts(u.commissioned_at)}"
    )
    usage, mkt = f.worst_usage, f.worst_mkt
    if usage is not None:
        budget = (
            f" of {_dur(f.budget)} budget ({usage.share_used:.0%}, {usage.status})"
            if f.budget is not None
            else " (no stability budget)"
        )
        lines.append(
            f"Out of range {_dur(usage.time_out)}, unknown {_dur(usage.time_gap)}, "
            f"counted {_dur(usage.counted)}{budget}"
        )
    if mkt is not None:
        lines.append(
            f"MKT       {mkt.mkt_c:.2f} °C (ΔH {mkt.delta_h_j_mol / 1000:.3f} kJ/mol, "
            f"{mkt.weighting}, {_dur(mkt.duration_covered)} covered)"
        )
    lines.append(f"Readings  {len(p.readings)} from {len(p.pieces)} logger piece(s)")
    lines.append("")
    lines.append("Excursions (from the unit's own series)")
    for _, e in f.excursions:
        end = "open" if e.end is None else _ts(e.end)
        lines.append(
            f"  {e.direction:4} {_ts(e.start)} -> {end}  {_dur(e.duration)}  "
            f"max {e.max_c:.1f} °C  min {e.min_c:.1f} °C{'  ALARM' if e.alarm else ''}"
        )
    if not f.excursions:
        lines.append("  none")
    lines.append("Recorded excursions exposed to")
    for r in p.recorded_excursions:
        qa = r.qa_state
        lines.append(
            f"  #{r.id} {r.shipment_reference} {r.device_id} {_ts(r.exposed_from)} "
            f"max {r.max_c:.1f} °C  QA: {qa}"
        )
    if not p.recorded_excursions:
        lines.append("  none")
    lines.append("")
    lines.append("Chain of custody")
    for ride in p.rides:
        legs = ", ".join(f"{g['origin']} -> {g['destination']}" for g in ride.legs)
        lines.append(
            f"  {ride.container}  in {ride.shipment_reference}  {_ts(ride.start)} -> "
            f"{_ts(ride.end)}{'  (' + legs + ')' if legs else ''}"
        )
    if not p.rides:
        lines.append("  never in a shipment")
    lines += [f"Note: {n}" for n in p.notes]
    return "\n".join(lines)
