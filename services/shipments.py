"""Shipments as the API, the dashboard and the CLI read them: the fleet list and overview, one
shipment's detail, its readings, excursions, limits and stability figures, a logger's readings.

Reads only (no caller, see :mod:`services`). Booking and the lifecycle of a shipment are
changes and live in their own service modules.

"Offline" is the rules engine's "no data" factor (``alerts.offline_factor``): every function
that judges a logger's condition takes it from the caller's settings
(:mod:`coldchain.thermal.limits`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from alerts.in_force import RuleSources, shipment_limits
from coldchain import lifecycle
from coldchain.settings import Settings
from coldchain.thermal.budget import DEFAULT_WARNING_SHARE
from coldchain.thermal.limits import Limits
from db.queries import excursions as excursion_q
from db.queries import readings as reading_q
from db.queries import shipments as shipment_q
from db.queries.readings import ReadingSeries, Track
from db.types import Conn, Page, Row
from reports.assemble import JsonDict, budget_settings, logger_evidence, mkt_settings
from reports.service import load_inputs
from services.reports import ReportSettings

__all__ = [
    "FleetOverview",
    "Stability",
    "device_readings",
    "excursions",
    "find_shipment",
    "fleet_filter_choices",
    "fleet_overview",
    "limits",
    "list_shipments",
    "rule_sources",
    "shipment_detail",
    "shipment_readings",
    "shipment_track",
    "stability",
]


def rule_sources(settings: Settings) -> ReportSettings:
    """What the rules engine stacks besides the database (its bottom layer and rules file),
    for the functions that judge by the rules in force (:func:`limits`, :func:`stability`,
    :func:`services.trace.passport`). Build it once per process, as the engine does; a rules
    file that does not load is left out and logged."""
    return ReportSettings.from_settings(settings)


def list_shipments(
    conn: Conn,
    *,
    offline_factor: float,
    status: str | None = None,
    statuses: Sequence[str] | None = None,
    condition: str | None = None,
    q: str | None = None,
    has_open_alerts: bool | None = None,
    lane: str | None = None,
    carrier: str | None = None,
    sort: str = "attention",
    descending: bool = True,
    limit: int = 50,
    offset: int = 0,
) -> Page:
    """One page of shipments with their live picture, those needing action first
    (:func:`db.queries.shipments.list_shipments`).

    Each row also says how it stands on temperature and with QA: ``n_excursions`` (on record),
    ``out_of_range_since`` (the start of the oldest excursion still open: when the product left
    its range, not when the alarm went off; None when in range), the worst excursion's
    ``peak_c`` and ``peak_degree_minutes`` (an open one's if any, ``peak_open``),
    ``budget_used`` (share of the stability budget, as the rules engine last counted it; None
    without a budget rule), ``qa_state`` (:func:`coldchain.lifecycle.qa_state`), ``carriers``
    (the shipment's and its legs') and ``eta_planned`` (the booking's planned arrival).
    """
    page = shipment_q.list_shipments(
        conn=conn,
        offline_factor=offline_factor,
        status=status,
        statuses=statuses,
        condition=condition,
        q=q,
        has_open_alerts=has_open_alerts,
        lane=lane,
        carrier=carrier,
        sort=sort,
        descending=descending,
        limit=limit,
        offset=offset,
    )
    for row in page.items:
        row["qa_state"] = lifecycle.qa_state(row["status"])
    return page


def fleet_filter_choices(conn: Conn) -> dict[str, list[str]]:
    """The lanes (``"origin → destination"``) and carriers the fleet can be filtered by."""
    return shipment_q.fleet_filter_choices(conn=conn)


@dataclass(frozen=True, slots=True)
class FleetOverview:
    """Every shipment as plain tuples in ``columns`` order (thousands at once: the map)."""

    columns: tuple[str, ...]
    rows: list[tuple[Any, ...]]


def fleet_overview(conn: Conn, *, offline_factor: float) -> FleetOverview:
    """Every shipment's reference, lane, condition, current temperature and position."""
    return FleetOverview(
        shipment_q.FLEET_OVERVIEW_COLUMNS,
        shipment_q.fleet_overview(conn=conn, offline_factor=offline_factor),
    )


def find_shipment(conn: Conn, *, key: str) -> int:
    """The id of the shipment ``key`` names (its id, else its reference); NotFoundError."""
    return shipment_q.find_shipment_id(conn=conn, key=key)


def shipment_detail(conn: Conn, *, key: str, offline_factor: float) -> Row:
    """One shipment in full: legs, loggers, product, latest reading, alerts, units on board;
    NotFoundError."""
    return shipment_q.get_shipment_detail(conn=conn, key=key, offline_factor=offline_factor)


def shipment_readings(
    conn: Conn,
    *,
    shipment_id: int,
    start: datetime | None = None,
    end: datetime | None = None,
    max_points: int = 2000,
) -> ReadingSeries:
    """The readings of the shipment's loggers during their assignments in [start, end),
    down-sampled into time buckets above ``max_points``."""
    return reading_q.shipment_readings(
        conn=conn, shipment_id=shipment_id, start=start, end=end, max_points=max_points
    )


def shipment_track(conn: Conn, *, shipment_id: int, max_points: int = 300) -> Track:
    """Where the shipment's loggers have been (readings with a position, down-sampled above
    ``max_points``) and its lane's origin and destination sites: the route map."""
    return reading_q.shipment_track(conn=conn, shipment_id=shipment_id, max_points=max_points)


def device_readings(
    conn: Conn,
    *,
    device_id: str,
    start: datetime | None = None,
    end: datetime | None = None,
    max_points: int = 2000,
) -> ReadingSeries:
    """A logger's readings in [start, end), whatever shipment it rode in, down-sampled alike."""
    return reading_q.device_readings(
        conn=conn, device_id=device_id, start=start, end=end, max_points=max_points
    )


def excursions(conn: Conn, *, shipment_id: int) -> list[Row]:
    """The shipment's current excursions (superseded versions left out), oldest first."""
    return excursion_q.list_excursions(conn=conn, shipment_id=shipment_id)


def limits(
    conn: Conn, rules: RuleSources, *, shipment_id: int, as_of: datetime | None = None
) -> Limits | None:
    """The temperature range the rules engine judges the shipment by (rules file and stored
    rule versions on top of the product row; None: none in force): the chart's band."""
    return shipment_limits(conn, rules, shipment_id=shipment_id, as_of=as_of)


@dataclass(frozen=True, slots=True)
class Stability:
    """The excursion report's MKT and stability-budget figures of a shipment, as of a time."""

    #: Per logger, the report's ``loggers`` blocks (readings, gaps, MKT, budget use).
    loggers: list[JsonDict]
    #: ΔH, weighting, window and limit used for MKT.
    mkt: JsonDict
    product: dict[str, Any] | None
    #: The share of the budget used from which it shows as a warning.
    warning_share: float


def stability(conn: Conn, rules: ReportSettings, *, shipment_id: int, as_of: datetime) -> Stability:
    """The figures the QA review signs (:func:`reports.service.load_inputs` and
    :func:`reports.assemble.logger_evidence`), so the shipment page shows the report's own
    numbers; NotFoundError for an unknown shipment."""
    inputs = load_inputs(conn, shipment_id=shipment_id, as_of=as_of, cfg=rules)
    budget_cfg = budget_settings(inputs) or {}
    return Stability(
        loggers=logger_evidence(inputs),
        mkt=mkt_settings(inputs),
        product=dict(inputs.product) if inputs.product else None,
        warning_share=float(budget_cfg.get("warning_share") or DEFAULT_WARNING_SHARE),
    )
