"""Alert rules: what is judged, against which thresholds, and who is told; the rules file.

This module is the rules' *form*: one pydantic model per rule section (:class:`RuleSet` is one
layer of them), the escalation tiers, the rules file (:class:`RulesFile`), and the parsing that
validates them. How layers stack into the rules of one shipment is :mod:`alerts.layers`.

A rules file is TOML (or YAML, by its suffix). Every table is ``extra="forbid"``: a misspelt key
is a :class:`~coldchain.errors.ConfigError` that names the file and the field, with a suggestion::

    [defaults]
    offline = { factor = 10 }                  # silent for 10 × the logger's interval
    battery = { below = 0.2 }                  # battery ratio 0…1
    forecast = { horizon_min = 60 }
    risk = { threshold = 0.3 }                 # chance of an excursion before arrival

    [products."09521234543213"]
    temperature = { alarm_delay_min = 30, clear_delay_min = 10 }
    mkt = { limit_c = 8.0, window_h = 24 }
    humidity = { min_rh = 20, max_rh = 80, delay_min = 30 }

    [shipments."SHP-0001"]
    temperature = { alarm_delay_min = 5 }

    [[escalation.tiers]]                       # tier 0 hears of every alert at once
    name = "Control tower"
    webhooks = ["https://hooks.example.com/coldchain"]
    emails = ["tower@example.com"]
    [[escalation.tiers]]                       # then, while nobody acknowledges
    name = "QA on call"
    after_min = 15
    emails = ["qa-oncall@example.com"]
    [escalation.reminders]                     # again every N minutes until acknowledged
    critical = 5
    warning = 60
    [escalation.quiet_hours]                   # reminders of these wait until 07:00
    start = "22:00"
    end = "07:00"
    time_zone = "Europe/Berlin"
    severities = ["info", "warning"]

``rules/example.toml`` documents every field. Rules stored through the API are validated with
:func:`parse_definition` (same models, same messages). Each section has ``enabled`` (false
switches the rule off at that layer) and ``severity``; durations are in minutes or hours as the
field name says. Every number is bounded to what the engine can compute with (durations at
most a year, temperature limits between -273.15 and 1000 °C, no infinity or NaN), so a stored
rule can never make an evaluation overflow.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from datetime import time, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from coldchain.errors import ConfigError
from coldchain.forecast.model import MIN_HISTORY
from coldchain.gs1 import IdentifierError, normalize_gtin
from coldchain.severity import Severity
from coldchain.validation import format_validation_error

__all__ = [
    "ROTATION_CHANNELS",
    "RULE_KEYS",
    "SECTIONS",
    "SECTION_OF",
    "BatteryRule",
    "BudgetRule",
    "EscalationPolicy",
    "EscalationTier",
    "FloodLimits",
    "ForecastRule",
    "HumidityRule",
    "MKTRule",
    "OfflineRule",
    "QuietHours",
    "Reminders",
    "RiskRule",
    "RuleSet",
    "RulesFile",
    "Section",
    "Severity",
    "TemperatureRule",
    "load_rules_file",
    "parse_definition",
    "parse_escalation",
    "rules_from_dict",
    "rules_from_text",
]

NonNeg = Annotated[float, Field(ge=0)]
# Bounds the engine can compute with: every duration becomes a ``timedelta`` and then int64
# microseconds, so an unbounded one (``{"offline": {"minutes": 52447204075659910}}``) would
# raise OverflowError at every evaluation. A year is longer than any shipment.
MAX_MINUTES = 60 * 24 * 365
MAX_HOURS = 24 * 365
Minutes = Annotated[float, Field(ge=0, le=MAX_MINUTES)]
#: A temperature limit: from absolute zero to well above anything a logger can measure.
Celsius = Annotated[float, Field(ge=-273.15, le=1000)]

#: The alert rule keys (one open alert per shipment and key).
RULE_KEYS = (
    "temp_high",
    "temp_low",
    "budget",
    "mkt",
    "humidity",
    "device_offline",
    "battery_low",
    "predicted_breach",
    "excursion_risk",
)


class Section(BaseModel):
    """One rule's fields; every field has a default so that a layer can set only some."""

    # No infinity or NaN (``inf`` in TOML, ``1e400`` in JSON): no threshold means "not set".
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    enabled: bool = True
    clear_delay_min: Minutes | None = None  # None: the engine's COLDCHAIN_ALERTS__CLEAR_DELAY_S

    def clear_delay(self, default: timedelta) -> timedelta:
        """How long the condition must stay clear before the alert clears (anti-flapping)."""
        return default if self.clear_delay_min is None else timedelta(minutes=self.clear_delay_min)


class TemperatureRule(Section):
    """High/low limits with an alarm delay; freezing alarms at once and more severely."""

    low_c: Celsius | None = None
    high_c: Celsius | None = None
    freeze_c: Celsius | None = None
    alarm_delay_min: Minutes = 0.0
    severity: Severity = "major"
    freeze_severity: Severity = "critical"
    auto_resolve: bool = False

    @model_validator(mode="after")
    def _order(self) -> TemperatureRule:
        if self.low_c is not None and self.high_c is not None and self.low_c >= self.high_c:
            raise ValueError(f"low_c ({self.low_c}) must be below high_c ({self.high_c})")
        if self.freeze_c is not None and self.low_c is not None and self.freeze_c >= self.low_c:
            # Otherwise a reading could be in range and freezing at the same time.
            raise ValueError(f"freeze_c ({self.freeze_c}) must be below low_c ({self.low_c})")
        return self


class BudgetRule(Section):
    """Cumulative time out of range (gaps counted as out) against the stability budget."""

    hours: float | None = Field(default=None, gt=0, le=MAX_HOURS)
    warning_share: float = Field(default=0.8, gt=0, le=1)
    count_gaps_as_out: bool = True
    warning_severity: Severity = "warning"
    exhausted_severity: Severity = "major"
    auto_resolve: bool = False


class MKTRule(Section):
    """Mean kinetic temperature over a trailing window above a limit."""

    limit_c: Celsius | None = None
    window_h: float = Field(default=24.0, gt=0, le=24 * 366)
    # Activation energies of drug degradation are 40–150 kJ/mol; a million keeps exp() finite.
    delta_h_j_mol: float = Field(default=83_144.0, gt=0, le=1_000_000)
    weighting: Literal["step", "trapezoid"] = "step"
    # Windows covering less than this share of window_h (start of a shipment, long gaps) are not
    # judged: an MKT over ten minutes is a temperature reading, not a kinetic mean.
    min_coverage: float = Field(default=0.5, gt=0, le=1)
    severity: Severity = "major"
    auto_resolve: bool = False


class HumidityRule(Section):
    """Relative humidity outside a range for longer than a delay."""

    min_rh: float | None = Field(default=None, ge=0, le=100)
    max_rh: float | None = Field(default=None, ge=0, le=100)
    delay_min: Minutes = 0.0
    severity: Severity = "warning"
    auto_resolve: bool = False

    @model_validator(mode="after")
    def _order(self) -> HumidityRule:
        if self.min_rh is not None and self.max_rh is not None and self.min_rh >= self.max_rh:
            raise ValueError(f"min_rh ({self.min_rh}) must be below max_rh ({self.max_rh})")
        return self


class OfflineRule(Section):
    """No reading for ``minutes``, or for ``factor`` × the logger's own interval."""

    factor: float | None = Field(default=None, gt=1, le=1000)
    minutes: float | None = Field(default=None, gt=0, le=MAX_MINUTES)
    severity: Severity = "major"
    # Operational: when readings resume the "no data" alert resolves by itself; the gap itself
    # stays visible in every report as unknown time.
    auto_resolve: bool = True


class BatteryRule(Section):
    """Battery ratio (0…1) below a threshold; clears only above threshold + hysteresis."""

    below: float | None = Field(default=None, gt=0, lt=1)
    hysteresis: float = Field(default=0.05, ge=0, lt=1)
    severity: Severity = "warning"
    auto_resolve: bool = True


class ForecastRule(Section):
    """The recent trend predicts a limit breach within ``horizon_min`` (see
    :mod:`coldchain.thermal.forecast`)."""

    horizon_min: float = Field(default=60.0, gt=0, le=24 * 60)
    lookback_min: float = Field(default=60.0, gt=0, le=24 * 60)
    min_slope_c_per_h: float = Field(default=0.1, ge=0, le=1000)
    # Only when the latest reading is already within this of the limit the trend heads for: a
    # product cooling back to mid-range after an excursion falls steeply for a while, and a
    # line through that predicts freezing; a real drift toward a limit passes the margin first.
    margin_c: float = Field(default=2.0, gt=0, le=1000)
    model: Literal["auto", "linear", "exponential"] = "auto"
    severity: Severity = "warning"
    # A prediction that did not come true, or that became an excursion (which has its own
    # alert), needs nobody's acknowledgement.
    auto_resolve: bool = True


class RiskRule(Section):
    """The forecast's chance of an excursion before arrival (:mod:`coldchain.forecast`, from
    the lane's finished shipments and the trend) is at least ``threshold``: an early warning.

    Judged per shipment in transit at every periodic pass (:mod:`alerts.risk`); only on a lane
    with at least ``min_history`` finished shipments (never fewer than the forecast's own
    minimum), and not while an excursion is under way (that excursion has its own alert).
    """

    threshold: float = Field(default=0.3, gt=0, le=1)
    min_history: int = Field(default=MIN_HISTORY, ge=MIN_HISTORY, le=100_000)
    severity: Severity = "warning"
    # A chance that fell back, or a shipment that arrived, needs nobody's acknowledgement.
    auto_resolve: bool = True


class RuleSet(BaseModel):
    """One layer of rules: each section, when present, sets some fields of that rule."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    temperature: TemperatureRule | None = None
    budget: BudgetRule | None = None
    mkt: MKTRule | None = None
    humidity: HumidityRule | None = None
    offline: OfflineRule | None = None
    battery: BatteryRule | None = None
    forecast: ForecastRule | None = None
    risk: RiskRule | None = None


#: The rules section that judges each alert rule key.
SECTION_OF = {
    "temp_high": "temperature",
    "temp_low": "temperature",
    "budget": "budget",
    "mkt": "mkt",
    "humidity": "humidity",
    "device_offline": "offline",
    "battery_low": "battery",
    "predicted_breach": "forecast",
    "excursion_risk": "risk",
}

SECTIONS: dict[str, type[Section]] = {
    "temperature": TemperatureRule,
    "budget": BudgetRule,
    "mkt": MKTRule,
    "humidity": HumidityRule,
    "offline": OfflineRule,
    "battery": BatteryRule,
    "forecast": ForecastRule,
    "risk": RiskRule,
}


#: How a rotation's person on call can be reached: their app_users contacts.
ROTATION_CHANNELS = ("email", "sms")
RotationChannel = Literal["email", "sms"]
Url = Annotated[str, Field(pattern=r"^https?://\S+$")]
#: What a masked secret looks like (alerts.channels.base.MASK): never a value to store.
_MASK = "…"


class EscalationTier(BaseModel):
    """Who hears of an alert, and after how many unacknowledged minutes (tier 0: at once); by
    which channels (alerts/channels/), and for which severities (default: all)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    after_min: Minutes | None = None
    # None: every severity; an empty list would be a tier that hears nothing, surely a mistake.
    severities: list[Severity] | None = Field(default=None, min_length=1)
    webhooks: list[Url] = Field(default_factory=list)
    emails: list[Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+$")]] = Field(default_factory=list)
    slack: list[Url] = Field(default_factory=list)  # incoming-webhook URLs
    teams: list[Url] = Field(default_factory=list)  # incoming-webhook (Workflows) URLs
    # Events API v2 routing keys (integration keys): 32 letters and digits.
    pagerduty: list[Annotated[str, Field(pattern=r"^[A-Za-z0-9]{32}$")]] = Field(
        default_factory=list
    )
    # Names of API keys in COLDCHAIN_ALERTS__OPSGENIE_API_KEYS (the key itself is a secret).
    opsgenie: list[Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]] = Field(
        default_factory=list
    )
    sms: list[Annotated[str, Field(pattern=r"^\+[1-9][0-9]{6,14}$")]] = Field(
        default_factory=list
    )  # E.164 numbers

    @field_validator("webhooks", "slack", "teams", "pagerduty", mode="before")
    @classmethod
    def _not_masked(cls, values: Any) -> Any:
        # GET /api/v1/escalation shows secrets masked; a policy sent back unchanged must not
        # store the mask in place of the secret.
        for value in values if isinstance(values, list) else []:
            if isinstance(value, str) and _MASK in value:
                raise ValueError(f"{value!r} is masked: give it in full")
        return values

    def hears(self, severity: str) -> bool:
        """Whether this tier is told of alerts of ``severity``."""
        return self.severities is None or severity in self.severities

    # The person on call in an on-call rotation (coldchain/oncall.py) at the moment of notifying,
    # reached by their own contacts (app_users.email / phone) on each channel of ``via``.
    rotation: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$")] | None = None
    via: list[RotationChannel] = Field(default_factory=list)

    @model_validator(mode="after")
    def _rotation_via(self) -> EscalationTier:
        if self.rotation is not None and not self.via:
            raise ValueError(
                f"rotation {self.rotation!r} needs via: how to reach the person on call "
                f"(one or more of {', '.join(ROTATION_CHANNELS)})"
            )
        if self.via and self.rotation is None:
            raise ValueError("via names how to reach a rotation's person on call: set rotation")
        if len(set(self.via)) != len(self.via):
            raise ValueError("via lists a channel twice")
        return self


class FloodLimits(BaseModel):
    """Notifications one recipient gets per hour: about one device, about one shipment, in all
    (None: the settings' COLDCHAIN_ALERTS__FLOOD_PER_…_PER_HOUR; 0: no limit)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    per_device_per_hour: int | None = Field(default=None, ge=0, le=100_000)
    per_shipment_per_hour: int | None = Field(default=None, ge=0, le=100_000)
    per_recipient_per_hour: int | None = Field(default=None, ge=0, le=100_000)


class Reminders(BaseModel):
    """``[escalation.reminders]``: minutes between reminders of an unacknowledged alert, per
    severity (0: none; a severity left out: ``COLDCHAIN_ALERTS__REMINDER_MINUTES__<SEVERITY>``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    critical: Minutes | None = None
    major: Minutes | None = None
    warning: Minutes | None = None
    info: Minutes | None = None


#: The severities quiet hours hold when the rules file does not list them.
QUIET_BY_DEFAULT: tuple[Severity, ...] = ("info", "warning")


class QuietHours(BaseModel):
    """``[escalation.quiet_hours]``: from ``start`` to ``end`` (local times in ``time_zone``;
    over midnight when start > end) reminders of these severities wait for the end. Never
    critical: a freezing vaccine wakes someone up."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    start: time
    end: time
    time_zone: str = Field(min_length=1)
    severities: list[Severity] = Field(default_factory=lambda: [*QUIET_BY_DEFAULT], min_length=1)

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not an IANA time zone (e.g. 'Europe/Berlin')") from None
        return value

    @field_validator("severities")
    @classmethod
    def _never_critical(cls, value: list[Severity]) -> list[Severity]:
        if "critical" in value:
            raise ValueError(
                "critical alerts are never held by quiet hours: remove 'critical' (the "
                "others may be info, warning, major)"
            )
        return value

    @model_validator(mode="after")
    def _span(self) -> QuietHours:
        if self.start == self.end:
            raise ValueError("start and end are the same time: quiet hours need a span")
        return self


class EscalationPolicy(BaseModel):
    """On-call tiers in order; ``after_min`` must grow from tier to tier. Reminders and quiet
    hours (alerts/reminders.py) apply to every tier."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tiers: list[EscalationTier] = Field(default_factory=list)
    reminders: Reminders | None = None
    quiet_hours: QuietHours | None = None
    limits: FloodLimits = Field(default_factory=FloodLimits)

    @field_validator("tiers")
    @classmethod
    def _increasing(cls, tiers: list[EscalationTier]) -> list[EscalationTier]:
        if tiers and tiers[0].after_min not in (None, 0):
            raise ValueError("tier 0 is notified when the alert opens; leave its after_min out")
        previous = 0.0
        for i, tier in enumerate(tiers[1:], start=1):
            if tier.after_min is not None:
                if tier.after_min <= previous:
                    raise ValueError(
                        f"tiers[{i}].after_min ({tier.after_min:g}) must be greater than the "
                        f"previous tier's ({previous:g})"
                    )
                previous = tier.after_min
        return tiers


def _gtin_key(value: str) -> str:
    try:
        return normalize_gtin(value)
    except IdentifierError as exc:
        raise ValueError(f"products key {value!r}: {exc}") from None


class RulesFile(BaseModel):
    """A whole rules file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    defaults: RuleSet = Field(default_factory=RuleSet)
    products: dict[str, RuleSet] = Field(default_factory=dict)
    shipments: dict[Annotated[str, Field(min_length=1)], RuleSet] = Field(default_factory=dict)
    escalation: EscalationPolicy | None = None

    @field_validator("products", mode="before")
    @classmethod
    def _gtins(cls, value: Any) -> Any:
        if isinstance(value, Mapping):
            return {_gtin_key(str(k)): v for k, v in value.items()}
        return value


# --------------------------------------------------------------------------------------------
# Loading and validation
# --------------------------------------------------------------------------------------------


def load_rules_file(path: str | Path) -> RulesFile:
    """Read and validate a rules file (TOML, or YAML for ``.yaml``/``.yml``)."""
    p = Path(path)
    try:
        text = p.read_text("utf-8")
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read the rules file: {exc}") from None
    fmt: Literal["toml", "yaml"] = "yaml" if p.suffix.lower() in (".yaml", ".yml") else "toml"
    return rules_from_text(text, source=str(p), fmt=fmt)


def rules_from_text(text: str, *, source: str, fmt: Literal["toml", "yaml"] = "toml") -> RulesFile:
    """Parse and validate rules text; ``source`` names the file in errors."""
    try:
        data: Any = tomllib.loads(text) if fmt == "toml" else yaml.safe_load(text)
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"{source}: not valid {fmt.upper()}: {exc}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: a rules file must be a table of settings")
    return rules_from_dict(data, source=source)


def rules_from_dict(data: Mapping[str, Any], *, source: str = "<rules>") -> RulesFile:
    """Validate a rules file given as a dict."""
    try:
        return RulesFile.model_validate(dict(data))
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, source, RulesFile, what="rules")) from None


def parse_escalation(data: Any, *, source: str) -> EscalationPolicy:
    """Validate an escalation policy (the rules file's ``[escalation]`` table, as the API
    stores it); errors name ``source`` and the field. At least one tier: a stored policy
    overrides the rules file's, and one that tells nobody is a mistake, not a choice."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: an escalation policy must be an object with tiers")
    try:
        found = EscalationPolicy.model_validate(dict(data))
    except ValidationError as exc:
        raise ConfigError(
            format_validation_error(exc, source, EscalationPolicy, what="escalation policy")
        ) from None
    if not found.tiers:
        raise ConfigError(f"{source}: tiers: at least one tier (tier 0 hears of every alert)")
    return found


def parse_definition(data: Any, *, source: str) -> RuleSet:
    """Validate one layer of rules (as the API stores them); errors name ``source`` and field."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: a rule definition must be an object of rule sections")
    try:
        return RuleSet.model_validate(dict(data))
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, source, RuleSet, what="rules")) from None
