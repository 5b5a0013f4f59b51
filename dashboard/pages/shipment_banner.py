"""The shipment page's status banner and header badge: the one sentence that says where the
shipment stands, and the badge beside its reference, both from :func:`status_banner` so they
cannot disagree.

Pure (:func:`status_banner`, :func:`out_of_range`): plain values and ``now`` in, text out. What
the banner says, first match wins:

1. an excursion still open (out of range now): "Out of range since 2026-12-05 19:07 UTC ·
   28 min · peak 12.8 °C", red when an unresolved alert of the shipment is major or critical
   (:mod:`coldchain.severity`), amber before the alarm (within the rule's delay) or for a
   warning;
2. a QA state (under review, released, quarantined, rejected, returned) or an arrival verdict:
   the state, the verdict (conforming, or exception with its first reason and how many more)
   and the signed decision in force (who, when, why). The badge says the verdict or the
   decision: an exception is never "OK";
3. an excursion that has ended: "Back in range since … after 1 h 2 min (peak 9.6 °C)";
4. otherwise the state: arrived, in transit (with the current temperature against the range),
   planned, cancelled; the badge is the fleet's condition (:mod:`db.queries.shipments`).

The temperature is judged by the limits the rules engine judges the shipment by
(:mod:`coldchain.thermal.limits`), through :meth:`coldchain.thermal.excursions.TempLimits.classify`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from dash import html

from coldchain import severity
from coldchain.thermal.excursions import Direction
from coldchain.thermal.limits import Limits, temperature_limits
from coldchain.timeline import TimelineEntry
from dashboard.pages import data_attrs, fmt_duration, fmt_range, fmt_temp, fmt_ts

Tone = Literal["alarm", "warning", "ok", "info", "offline"]

#: The QA states, and the badge each gives.
QA_STATES: dict[str, tuple[str, Tone]] = {
    "released": ("Released", "ok"),
    "quarantined": ("Quarantined", "alarm"),
    "rejected": ("Rejected", "alarm"),
    "returned": ("Returned", "alarm"),
}
_CONDITION: dict[str, tuple[str, Tone]] = {
    "alarm": ("Alarm", "alarm"),
    "warning": ("Warning", "warning"),
    "offline": ("Offline", "offline"),
    "ok": ("OK", "ok"),
}
# Any positive gap: classify() does not use it, TempLimits requires one.
_ANY_GAP = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class Banner:
    """What the top of the shipment page says."""

    #: ``excursion``, ``qa``, ``cleared``, ``arrived``, ``in_transit``, ``planned``, ``cancelled``.
    kind: str
    tone: Tone
    #: The header badge's text.
    label: str
    text: str


def out_of_range(limits: Limits | None, temp_c: float | None) -> Direction | None:
    """ "high", "low" or None: a temperature against the limits in force (none: never out)."""
    if limits is None or temp_c is None:
        return None
    return temperature_limits(limits, _ANY_GAP).classify(temp_c)


def _peak(rows: Sequence[Mapping[str, Any]]) -> str:
    highs = [r["max_c"] for r in rows if r["direction"] == "high"]
    lows = [r["min_c"] for r in rows if r["direction"] == "low"]
    if highs:
        return fmt_temp(max(highs))
    return fmt_temp(min(lows)) if lows else "—"


def _verdict_text(verdicts: Sequence[Mapping[str, Any]]) -> tuple[str | None, str]:
    """(``conforming`` / ``exception`` / None, the sentence)."""
    if not verdicts:
        return None, "no arrival verdict yet"
    reasons = [r["message"] for v in verdicts for r in (v.get("reasons") or [])]
    if all(v["verdict"] == "conforming" for v in verdicts):
        return "conforming", "arrival verdict: conforming"
    more = f" (and {len(reasons) - 1} more)" if len(reasons) > 1 else ""
    first = f": {reasons[0]}{more}" if reasons else ""
    return "exception", f"arrival verdict: exception{first}"


def status_banner(
    *,
    status: str,
    condition: str,
    excursions: Sequence[Mapping[str, Any]],
    alerts: Sequence[Mapping[str, Any]],
    verdicts: Sequence[Mapping[str, Any]],
    decision: TimelineEntry | None,
    current_temp_c: float | None,
    limits: Limits | None,
    now: datetime,
) -> Banner:
    """The banner and badge of a shipment (see the module docstring for the rules)."""
    still_open = [x for x in excursions if x["end_ts"] is None]
    if still_open:
        since = min(x["start_ts"] for x in still_open)
        worst = severity.strongest(a["severity"] for a in alerts)
        alarmed = any(x["alarm"] for x in still_open)
        red = worst in ("major", "critical") or (worst is None and alarmed)
        return Banner(
            "excursion",
            "alarm" if red else "warning",
            "Out of range",
            # (a start after ``now``, a logger's clock ahead, reads as 0 min, not negative)
            f"Out of range since {fmt_ts(since)} · "
            f"{fmt_duration(max((now - since).total_seconds(), 0.0))}"
            f" · peak {_peak(still_open)}",
        )
    outcome, verdict = _verdict_text(verdicts)
    if status in QA_STATES or status == "under_review" or (status == "arrived" and verdicts):
        if status in QA_STATES:
            label, tone = QA_STATES[status]
        elif outcome == "exception":
            label, tone = "Exception", "warning"
        elif outcome == "conforming":
            label, tone = "Conforming", "ok"
        else:
            label, tone = "Under review", "info"
        state = status.replace("_", " ").capitalize()
        if status == "under_review":
            state = "Under QA review"
        signed = ""
        if decision is not None:
            signed = f" · {decision.title.removeprefix('Signed: ')} by {decision.actor} on "
            signed += f"{fmt_ts(decision.at)}" + (
                f" ({decision.detail})" if decision.detail else ""
            )
        return Banner("qa", tone, label, f"{state} · {verdict}{signed}")
    ended = [x for x in excursions if x["end_ts"] is not None]
    if ended and status in ("in_transit", "arrived"):
        last = max(ended, key=lambda x: x["end_ts"])
        alarm = condition == "alarm"  # e.g. an alert nobody has acknowledged yet
        return Banner(
            "cleared",
            "alarm" if alarm else "warning",
            "Alarm" if alarm else "Back in range",
            f"Back in range since {fmt_ts(last['end_ts'])} after "
            f"{fmt_duration((last['end_ts'] - last['start_ts']).total_seconds())}"
            f" (peak {_peak([last])})",
        )
    label, tone = _CONDITION.get(condition, ("OK", "ok"))
    if status == "arrived":
        return Banner("arrived", tone, label, f"Arrived · {verdict}")
    if status == "in_transit":
        now_text = "no reading yet"
        if current_temp_c is not None:
            side = out_of_range(limits, current_temp_c)
            band = "" if limits is None else fmt_range(limits.low_c, limits.high_c)
            where = (
                "" if limits is None
                else f", outside {band} (no excursion recorded yet)" if side
                else f", within {band}"
            )  # fmt: skip
            now_text = f"{fmt_temp(current_temp_c)} now{where}"
        if condition == "offline":
            now_text += " · a logger is offline or none is attached"
        return Banner("in_transit", tone, label, f"In transit · {now_text}")
    if status == "cancelled":
        return Banner("cancelled", "offline", "Cancelled", "Cancelled")
    return Banner(status, "info", status.replace("_", " ").capitalize(),
                  f"{status.replace('_', ' ').capitalize()} · not started")  # fmt: skip


def banner_view(banner: Banner) -> html.Div:
    """The banner as a coloured strip: ``div.status-banner.banner-<tone>[data-kind][data-tone]``."""
    return html.Div(
        banner.text,
        className=f"status-banner banner-{banner.tone}",
        role="status",
        **data_attrs(kind=banner.kind, tone=banner.tone),
    )
