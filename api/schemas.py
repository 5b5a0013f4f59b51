"""What the API returns and accepts. Timestamps are ISO 8601 with a time zone (UTC, ``Z``)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from coldchain.lifecycle import State
from coldchain.severity import Severity
from services.alerts import COMMENT_MAX_LENGTH

Condition = Literal["alarm", "warning", "offline", "ok"]
AlertState = Literal["open", "acknowledged", "resolved"]
#: A shipment's state: the one definition is coldchain.lifecycle.
ShipmentStatus = State

#: A person's user name as given in a request (an assignee): trimmed, not empty.
Actor = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
#: The "why" of an alert action (the service enforces the same limit for every edge).
Comment = Annotated[str, StringConstraints(strip_whitespace=True, max_length=COMMENT_MAX_LENGTH)]


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=False, extra="ignore")


class ProductRef(_Out):
    """The product a shipment carries and its labelled range."""

    gtin: str
    name: str | None
    temp_min_c: float | None
    temp_max_c: float | None


class Product(ProductRef):
    """A product and its stability profile."""

    freeze_limit_c: float | None
    alarm_delay_s: int
    stability_budget_s: int | None
    mkt_delta_h_j_mol: float
    mkt_limit_c: float | None
    rh_min: float | None
    rh_max: float | None


class ShipmentSummary(_Out):
    """One shipment in the fleet list: where it goes, what it carries, how it is doing now."""

    id: int
    reference: str
    origin: str
    destination: str
    lane: str = Field(description="origin → destination")
    status: ShipmentStatus
    carrier: str | None
    planned_departure: AwareDatetime | None
    planned_arrival: AwareDatetime | None
    product: ProductRef | None
    current_temp_c: float | None = Field(
        description="from the loggers assigned now: the reading furthest outside the range, "
        "else the newest"
    )
    current_rh: float | None
    current_device_id: str | None
    last_seen: AwareDatetime | None = Field(
        description="newest reading of the loggers assigned now"
    )
    lat: float | None
    lon: float | None
    n_devices: int = Field(description="loggers assigned now")
    n_devices_offline: int
    open_alerts: int = Field(description="unresolved alerts (open or acknowledged)")
    unacknowledged_alerts: int = Field(description="alerts still in state 'open'")
    worst_severity: Severity | None = Field(description="of the unresolved alerts")
    condition: Condition
    attention: int = Field(description="3 alarm, 2 warning, 1 offline, 0 ok; lists sort by it")


class FleetShipment(ShipmentSummary):
    """A shipment as the fleet list shows it: also since when it is out of range, how bad, its
    budget, what QA made of it, its carriers and planned arrival (the dashboard's fleet table)."""

    n_excursions: int = Field(description="excursions on record")
    out_of_range_since: AwareDatetime | None = Field(
        description="start of the oldest excursion still open: when the product left its range "
        "(not the alarm); null when in range"
    )
    peak_c: float | None = Field(description="the worst excursion's peak (an open one's if any)")
    peak_degree_minutes: float | None = Field(description="the same excursion's °C·min")
    peak_open: bool = Field(description="the peak is of an excursion still under way")
    budget_used: float | None = Field(
        description="share of the stability budget used (0–1), as the rules engine last counted "
        "it; null without a budget rule"
    )
    qa_state: str | None = Field(
        description="what QA has made of it, in plain words (awaiting review, under review, "
        "released, quarantined, rejected, returned); null before arrival"
    )
    carriers: list[str] = Field(description="the shipment's carrier and its legs'")
    eta_planned: AwareDatetime | None = Field(
        description="planned arrival: the booking's, else its last leg's"
    )


class Page(_Out):
    """Pagination of a list: ``total`` rows match the filters."""

    total: int
    limit: int
    offset: int


class ShipmentPage(Page):
    """A page of shipments, the ones that need action first."""

    items: list[FleetShipment]


class Leg(_Out):
    """One leg of a shipment (truck, air, truck…)."""

    seq: int
    mode: str
    origin: str
    destination: str
    carrier: str | None
    planned_departure: AwareDatetime | None
    planned_arrival: AwareDatetime | None


class ShipmentDevice(_Out):
    """A logger assigned to a shipment, with its calibration and latest state in the assignment."""

    device_id: str
    model: str
    calibration_cert: str | None
    calibration_due: date | None
    interval_s: int
    assigned_from: AwareDatetime | None
    assigned_to: AwareDatetime | None
    current: bool
    last_seen: AwareDatetime | None
    temp_c: float | None
    rh: float | None
    battery: float | None
    online: bool | None


class Reading(_Out):
    """One reading at the logger's own measurement time."""

    device_id: str
    ts: AwareDatetime
    temp_c: float | None
    rh: float | None
    lat: float | None
    lon: float | None
    battery: float | None


class Unit(_Out):
    """A serialised unit (SSCC or SGTIN, as an EPC URI) and when it was on board."""

    epc: str
    kind: Literal["sscc", "sgtin"]
    gtin: str | None
    serial: str | None
    sscc: str | None
    lot: str | None
    expiry: date | None
    on_board_from: AwareDatetime | None
    on_board_to: AwareDatetime | None


class Alert(_Out):
    """An alert with its lifecycle fields; ``triggered_at`` is the reading's own time."""

    id: int
    shipment_id: int | None = Field(description="None: a system alert (ingest stalled)")
    shipment_reference: str | None
    rule_key: str
    severity: Severity
    state: AlertState
    title: str
    device_id: str | None
    triggered_at: AwareDatetime
    value: float | None
    thresholds: dict[str, Any]
    details: dict[str, Any]
    assignee: str | None
    acked_by: str | None
    acked_at: AwareDatetime | None
    ack_comment: str | None
    resolved_by: str | None
    resolved_at: AwareDatetime | None
    escalation_level: int
    cleared_at: AwareDatetime | None = Field(description="when the condition cleared")
    created_at: AwareDatetime
    updated_at: AwareDatetime


class AlertEvent(_Out):
    """One entry of an alert's timeline."""

    id: int
    at: AwareDatetime
    kind: str
    actor: str | None
    comment: str | None
    data: dict[str, Any]


class AlertDetail(Alert):
    """An alert with its timeline, oldest first."""

    events: list[AlertEvent]


class AlertPage(Page):
    """A page of alerts: unresolved first, then strongest severity, then oldest."""

    items: list[Alert]


class ShipmentDetail(ShipmentSummary):
    """Everything about one shipment."""

    product: Product | None  # the full profile, not only the reference
    legs: list[Leg]
    devices: list[ShipmentDevice]
    latest_reading: Reading | None
    alerts: list[Alert] = Field(description="unresolved alerts")
    units: list[Unit]


class ReadingPoint(_Out):
    """A raw reading (``n`` = 1) or a ``time_bucket`` of readings starting at ``ts``.

    In a bucket ``temp_c`` and ``rh`` are means, ``temp_min_c``/``temp_max_c`` the extremes.
    """

    device_id: str
    ts: AwareDatetime
    n: int
    temp_c: float | None
    temp_min_c: float | None
    temp_max_c: float | None
    rh: float | None
    lat: float | None
    lon: float | None
    battery: float | None


class ReadingSeries(_Out):
    """Readings over [start, end), raw or down-sampled to at most ``max_points`` points."""

    shipment_id: int | None = None
    device_id: str | None = None
    start: AwareDatetime | None
    end: AwareDatetime | None
    resolution: Literal["raw", "bucket"]
    bucket_s: int | None
    total_readings: int = Field(description="raw readings in the range")
    points: list[ReadingPoint]


class Excursion(_Out):
    """A current (not superseded) excursion with the thresholds it was judged against."""

    id: int
    shipment_id: int
    device_id: str
    direction: Literal["high", "low"]
    start_ts: AwareDatetime
    end_ts: AwareDatetime | None
    last_out_ts: AwareDatetime
    open: bool
    ended_by_gap: bool
    duration_s: float
    min_c: float
    max_c: float
    degree_minutes: float
    n_readings: int
    readings_over_40: int
    readings_freezing: int
    alarm: bool
    alarm_at: AwareDatetime | None
    freeze_alarm: bool
    rule_key: str
    alert_id: int | None = Field(description="the alert this excursion raised or joined")
    thresholds: dict[str, Any]


class Device(_Out):
    """A logger with its calibration, latest state and the shipment it rides in now."""

    device_id: str
    model: str
    calibration_cert: str | None
    calibration_due: date | None
    interval_s: int
    created_at: AwareDatetime
    last_seen: AwareDatetime | None
    temp_c: float | None
    rh: float | None
    lat: float | None
    lon: float | None
    battery: float | None
    online: bool | None
    firmware: str | None
    current_shipment_id: int | None
    current_shipment_reference: str | None
    version: int
    retired_at: AwareDatetime | None


class DeviceAssignment(_Out):
    """An interval during which a logger rode in a shipment."""

    shipment_id: int
    shipment_reference: str
    assigned_from: AwareDatetime | None
    assigned_to: AwareDatetime | None
    current: bool


class DeviceDetail(Device):
    """A logger with its assignments, newest first."""

    assignments: list[DeviceAssignment]


class Pipeline(_Out):
    """How the rules engines and the outbox keep up (services.health.PipelineFigures)."""

    engine_lag_s: float = Field(description="age of the oldest change no engine has processed")
    outbox_oldest_s: float = Field(description="age of the oldest notification not yet sent")
    notifications_retrying: int = Field(description="notifications waiting for a retry")
    deliveries_failed_1h: int = Field(description="notifications given up within the hour")
    engines: int = Field(description="rules engines whose claims beat recently")


class Health(_Out):
    """The web process and its database are up; how the pipeline behind them keeps up."""

    status: Literal["ok"]
    pipeline: Pipeline | None = None


class ErrorOut(_Out):
    """An error; ``error_id`` ties a 500 to its log line."""

    detail: str
    error_id: str | None = None


class Forecast(_Out):
    """The forecast of a shipment in transit (README "Forecast"; None figures: see ``notes``)."""

    as_of: AwareDatetime
    basis: Literal["history", "plan"]
    lane: str | None
    history_n: int
    min_history: int
    progress: float | None
    progress_basis: Literal["position", "elapsed"] | None
    eta: AwareDatetime | None
    eta_low: AwareDatetime | None
    eta_high: AwareDatetime | None
    excursion_chance: float | None
    excursion_history: float | None
    trend_breach_at: AwareDatetime | None
    trend_counts: bool
    budget_chance: float | None
    budget_left_s: float | None
    notes: list[str]


class ShipmentForecast(_Out):
    """A shipment's forecast; ``forecast`` is null when it is not in transit (``reason``)."""

    shipment_id: int
    forecast: Forecast | None
    reason: str | None = None
