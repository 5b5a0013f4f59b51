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
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from coldchain.errors import ConfigError
from coldchain.forecast.model import MIN_HISTORY
from coldchain.gs1 import IdentifierError, normalize_gtin
from coldchain.severity import Severity
from coldchain.validation import format_validation_error

__all__ = [
    "RULE_KEYS",
    "SECTIONS",
    "SECTION_OF",
    "BatteryRule",
    "BudgetRule",
    "EscalationPolicy",
    "EscalationTier",
    "ForecastRule",
    "HumidityRule",
    "MKTRule",
    "OfflineRule",
    "RiskRule",
    "RuleSet",
    "RulesFile",
    "Section",
    "Severity",
    "TemperatureRule",
    "load_rules_file",
    "parse_definition",
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


class EscalationTier(BaseModel):
    """Who hears of an alert, and after how many unacknowledged minutes (tier 0: at once)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    after_min: Minutes | None = None
    webhooks: list[Annotated[str, Field(pattern=r"^https?://")]] = Field(default_factory=list)
    emails: list[Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+$")]] = Field(default_factory=list)


class EscalationPolicy(BaseModel):
    """On-call tiers in order; ``after_min`` must grow from tier to tier."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tiers: list[EscalationTier] = Field(default_factory=list)

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


def parse_definition(data: Any, *, source: str) -> RuleSet:
    """Validate one layer of rules (as the API stores them); errors name ``source`` and field."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: a rule definition must be an object of rule sections")
    try:
        return RuleSet.model_validate(dict(data))
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, source, RuleSet, what="rules")) from None
