"""The shipment page's MKT and stability budget card: the excursion report's own figures
(:func:`services.shipments.stability`, per logger), the worst of them as headline numbers, and
their gauges.

The MKT is judged against the product's MKT limit, else the upper limit of its labelled range,
and says which (:func:`coldchain.thermal.mkt_judgement.judge_mkt`); it names ΔH and the weighting
it was computed with, the window the readings actually cover (from–to, hours) and the coverage
of the nominal window (:func:`coldchain.thermal.mkt_judgement.window_coverage`): an MKT over one
hour of readings is not labelled "24 h".

Two budgets exist and the card says which it shows: once the shipment has an arrival verdict
judged by a stability profile, the verdict's band figures (the profile's allowances, what QA
decides on); before that, or without a profile, the product's own stability budget counted live
(``products.stability_budget_s`` or the rules' ``budget`` section, as the report counts it).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from dash import html

from coldchain.thermal.mkt_judgement import MKTJudgement, judge_mkt, window_coverage
from dashboard import figures, ids
from dashboard.pages import badge, data_attrs, fmt_duration, fmt_range, fmt_ts, table

_BUDGET_BADGE = {"ok": "ok", "warning": "warning", "exhausted": "alarm"}


def worst_loggers(
    loggers: list[dict[str, Any]],
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """The logger blocks with the highest MKT over the window and with the most budget used
    (the conservative reading when a shipment carries several loggers)."""
    with_mkt = [lg for lg in loggers if lg["mkt"]["window"] is not None]
    with_budget = [lg for lg in loggers if lg["budget"] is not None]
    hottest = max(with_mkt, key=lambda lg: lg["mkt"]["window"]["mkt_c"], default=None)
    most_used = max(with_budget, key=lambda lg: lg["budget"]["share_used"], default=None)
    return hottest, most_used


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h"


def judgement_text(judged: MKTJudgement) -> str:
    """The MKT's verdict in words, naming the limit it was judged against."""
    if judged.basis == "none" or judged.limit_c is None:
        return "not judged: the product has neither an MKT limit nor an upper storage limit"
    where = "above" if judged.above else "within"
    if judged.basis == "mkt_limit":
        return f"{where} its MKT limit of {judged.limit_c:g} °C"
    return (
        f"{where} the label range's upper limit of {judged.limit_c:g} °C "
        "(the product has no MKT limit)"
    )


def mkt_lines(window: dict[str, Any], mkt_cfg: dict[str, Any]) -> list[str]:
    """ΔH and weighting, the window covered (from–to, hours) and its coverage of the nominal
    window, as the lines under the MKT figure."""
    window_h = float(mkt_cfg["window_h"])
    start, end = datetime.fromisoformat(window["start"]), datetime.fromisoformat(window["end"])
    covered = float(window["duration_covered_s"])
    share = window_coverage(covered, window_h * 3600)
    return [
        f"ΔH {float(mkt_cfg['delta_h_j_mol']) / 1000:g} kJ/mol · {mkt_cfg['weighting']} weighting",
        f"window {fmt_ts(start)} → {fmt_ts(end)} ({_hours((end - start).total_seconds())})",
        f"coverage {share * 100:.0f} % of the {window_h:g} h window ({_hours(covered)} with data)",
    ]


def _profile_band(verdicts: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The verdict and band with the highest share used, among verdicts judged by a profile."""
    bands = [
        (v, b)
        for v in verdicts
        if v.get("profile_version")
        for b in (v.get("figures") or {}).get("bands", [])
        if b.get("share") is not None
    ]
    return max(bands, key=lambda vb: vb[1]["share"], default=None)


def budget_fact(
    most_used: dict[str, Any] | None, verdicts: list[dict[str, Any]]
) -> tuple[str, str, float | None]:
    """(figure, the line saying which budget it is, share used) for the budget headline."""
    profile = _profile_band(verdicts)
    if profile is not None:
        v, b = profile
        band = b.get("label") or fmt_range(b.get("low_c"), b.get("high_c"))
        state = "exceeded" if b["exceeded"] else "within"
        return (
            f"{b['share'] * 100:.1f} %",
            f"{fmt_duration(b['used_s'])} of {fmt_duration(b['budget_s'])} · {state} · "
            f"{band} band of the stability profile v{v['profile_version']} "
            f"(arrival verdict, {fmt_ts(v['evaluated_at'])})",
            float(b["share"]),
        )
    if most_used is None:
        return "—", "the product has no stability budget", None
    b = most_used["budget"]
    return (
        f"{b['share_used'] * 100:.1f} %",
        f"{fmt_duration(b['counted_s'])} of {fmt_duration(b['budget_s'])}"
        f" · {b['status']} · {most_used['device_id']} · the product's stability budget, live",
        float(b["share_used"]),
    )


def stability_panel(
    loggers: list[dict[str, Any]],
    mkt_cfg: dict[str, Any],
    product: dict[str, Any] | None,
    *,
    warning_share: float,
    verdicts: list[dict[str, Any]] | None = None,
) -> tuple[list[Any], Any]:
    """The MKT and budget figures (per logger, and the worst as headline numbers) and their
    gauges, from the report's ``loggers`` blocks and the arrival verdicts."""
    product = product or {}
    hottest, most_used = worst_loggers(loggers)
    window_h = float(mkt_cfg["window_h"])
    judged: MKTJudgement | None = None
    mkt_title, mkt_text, mkt_sub = f"MKT ({window_h:g} h window)", "—", ["no readings yet"]
    if hottest is not None:
        window = hottest["mkt"]["window"]
        judged = judge_mkt(
            float(window["mkt_c"]),
            mkt_limit_c=mkt_cfg["limit_c"],
            label_high_c=product.get("temp_max_c"),
        )
        covered = datetime.fromisoformat(window["end"]) - datetime.fromisoformat(window["start"])
        mkt_title = f"MKT (over {_hours(covered.total_seconds())})"
        mkt_text = f"{judged.mkt_c:.2f} °C"
        mkt_sub = [f"{judgement_text(judged)} · {hottest['device_id']}",
                   *mkt_lines(window, mkt_cfg)]  # fmt: skip
    budget_text, budget_sub, share = budget_fact(most_used, verdicts or [])
    above = judged is not None and judged.above
    verdict = "none" if judged is None or judged.above is None else "above" if above else "within"
    headline = html.Dl(
        className="facts",
        children=[
            html.Div(
                [
                    html.Dt(mkt_title),
                    html.Dd(mkt_text, id=ids.SHIPMENT_MKT, className="text-alarm" if above else ""),
                    *[html.Div(line, className="sub") for line in mkt_sub],
                ],
                className="fact fact-mkt" + (" fact-alarm" if above else ""),
                **data_attrs(verdict=verdict, basis="none" if judged is None else judged.basis),
            ),
            html.Div(
                [
                    html.Dt("Stability budget used"),
                    html.Dd(budget_text, id=ids.SHIPMENT_BUDGET),
                    html.Div(budget_sub, className="sub"),
                ],
                className="fact fact-budget",
            ),
        ],
    )
    rows = []
    for lg in loggers:
        window, trip, b = lg["mkt"]["window"], lg["mkt"]["whole_trip"], lg["budget"]
        rows.append(
            html.Tr(
                className="stability-row",
                **data_attrs(device_id=lg["device_id"]),
                children=[
                    html.Td(lg["device_id"]),
                    html.Td("—" if window is None else f"{window['mkt_c']:.2f} °C"),
                    html.Td("—" if trip is None else f"{trip['mkt_c']:.2f} °C"),
                    html.Td("—" if b is None else f"{b['share_used'] * 100:.1f} %"),
                    html.Td("—" if b is None else fmt_duration(b["counted_s"])),
                    html.Td("—" if b is None else badge(b["status"], _BUDGET_BADGE[b["status"]])),
                ],
            )
        )
    per_logger = table(
        ["Logger", f"MKT (last {window_h:g} h)", "MKT trip", "Budget used", "Counted", "Status"],
        rows,
        empty="No logger readings yet.",
    )
    gauges = figures.stability_gauges(
        mkt_c=None if judged is None else judged.mkt_c,
        mkt_limit_c=None if judged is None else judged.limit_c,
        mkt_above=bool(above),
        mkt_title=mkt_title,
        temp_min_c=product.get("temp_min_c"),
        temp_max_c=product.get("temp_max_c"),
        share_used=share,
        warning_share=warning_share,
    )
    return [headline, per_logger], gauges
