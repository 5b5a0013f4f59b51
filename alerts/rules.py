"""Alert rules: what is judged, against which thresholds, and who is told.

Rules are layered; each layer may set any field of any section, and a later layer wins field by
field (so a shipment override ``temperature = { alarm_delay_min = 5 }`` changes only the delay):

1. the engine's settings (offline factor, battery threshold, clear delay: ``COLDCHAIN_ALERTS__…``);
2. ``[defaults]`` of the rules file;
3. the product row (range, freeze limit, alarm delay, stability budget, MKT limit and ΔH,
   humidity range): :func:`product_rules`;
4. ``[products."<GTIN>"]`` of the rules file, then the product's rules stored through the API;
5. ``[shipments."<reference>"]`` of the rules file, then the shipment's rules stored through
   the API.

:func:`rule_layers` stacks them in this order, named as each alert's ``sources`` lists them; the
engine, the reports and the API all take their layers from it.

A rules file is TOML (or YAML, by its suffix). Every table is ``extra="forbid"``: a misspelt key
is a :class:`~coldchain.errors.ConfigError` that names the file and the field, with a suggestion::

    [defaults]
    offline = { factor = 10 }                  # silent for 10 × the logger's interval
    battery = { below = 0.2 }                  # battery ratio 0…1
    forecast = { horizon_min = 60 }

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
rule can never make an evaluation overflow. :class:`EffectiveRules` is the merged result, and
:meth:`EffectiveRules.snapshot` the exact rule each excursion and alert stores ("as it was when
evaluated").
"""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from coldchain.errors import ConfigError
from coldchain.gs1 import IdentifierError, normalize_gtin
from coldchain.severity import Severity
from coldchain.validation import format_validation_error

__all__ = [
    "RULE_KEYS",
    "SECTIONS",
    "SECTION_OF",
    "BatteryRule",
    "BudgetRule",
    "EffectiveRules",
    "EscalationPolicy",
    "EscalationTier",
    "ForecastRule",
    "HumidityRule",
    "Layer",
    "MKTRule",
    "OfflineRule",
    "ProductRow",
    "RuleSet",
    "RulesFile",
    "Severity",
    "StoredRules",
    "TemperatureRule",
    "load_rules_file",
    "merge",
    "parse_definition",
    "product_rules",
    "resolve",
    "rule_layers",
    "rules_from_dict",
    "rules_from_text",
    "settings_rules",
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
)


class _Section(BaseModel):
    """One rule's fields; every field has a default so that a layer can set only some."""

    # No infinity or NaN (``inf`` in TOML, ``1e400`` in JSON): no threshold means "not set".
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    enabled: bool = True
    clear_delay_min: Minutes | None = None  # None: the engine's COLDCHAIN_ALERTS__CLEAR_DELAY_S

    def clear_delay(self, default: timedelta) -> timedelta:
        """How long the condition must stay clear before the alert clears (anti-flapping)."""
        return default if self.clear_delay_min is None else timedelta(minutes=self.clear_delay_min)


class TemperatureRule(_Section):
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


class BudgetRule(_Section):
    """Cumulative time out of range (gaps counted as out) against the stability budget."""

    hours: float | None = Field(default=None, gt=0, le=MAX_HOURS)
    warning_share: float = Field(default=0.8, gt=0, le=1)
    count_gaps_as_out: bool = True
    warning_severity: Severity = "warning"
    exhausted_severity: Severity = "major"
    auto_resolve: bool = False


class MKTRule(_Section):
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


class HumidityRule(_Section):
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


class OfflineRule(_Section):
    """No reading for ``minutes``, or for ``factor`` × the logger's own interval."""

    factor: float | None = Field(default=None, gt=1, le=1000)
    minutes: float | None = Field(default=None, gt=0, le=MAX_MINUTES)
    severity: Severity = "major"
    # Operational: when readings resume the "no data" alert resolves by itself; the gap itself
    # stays visible in every report as unknown time.
    auto_resolve: bool = True


class BatteryRule(_Section):
    """Battery ratio (0…1) below a threshold; clears only above threshold + hysteresis."""

    below: float | None = Field(default=None, gt=0, lt=1)
    hysteresis: float = Field(default=0.05, ge=0, lt=1)
    severity: Severity = "warning"
    auto_resolve: bool = True


class ForecastRule(_Section):
    """The recent trend predicts a limit breach within ``horizon_min`` (see alerts.forecast)."""

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
}

SECTIONS: dict[str, type[_Section]] = {
    "temperature": TemperatureRule,
    "budget": BudgetRule,
    "mkt": MKTRule,
    "humidity": HumidityRule,
    "offline": OfflineRule,
    "battery": BatteryRule,
    "forecast": ForecastRule,
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


# --------------------------------------------------------------------------------------------
# Layers and merging
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProductRow:
    """The product columns rules are derived from (as stored in ``products``)."""

    gtin: str | None
    name: str | None = None
    temp_min_c: float | None = None
    temp_max_c: float | None = None
    freeze_limit_c: float | None = None
    alarm_delay_s: int = 0
    stability_budget_s: int | None = None
    mkt_delta_h_j_mol: float | None = None
    mkt_limit_c: float | None = None
    rh_min: float | None = None
    rh_max: float | None = None

    @classmethod
    def from_columns(cls, row: Mapping[str, Any]) -> ProductRow:
        """The fields of a ``products`` row read by column name (extra columns ignored)."""
        return cls(**{f.name: row[f.name] for f in dataclasses.fields(cls)})


@dataclass(frozen=True, slots=True)
class StoredRules:
    """The version in force of a product's or a shipment's rules stored through the API."""

    version: int
    definition: Any  # as stored (JSON); validated when it is stacked


Layer = tuple[str, RuleSet | None]


def product_rules(row: ProductRow) -> RuleSet:
    """The default rules of a product, from its row: only what the row says is set."""
    temperature: dict[str, Any] = {"alarm_delay_min": row.alarm_delay_s / 60.0}
    for name, value in (
        ("low_c", row.temp_min_c),
        ("high_c", row.temp_max_c),
        ("freeze_c", row.freeze_limit_c),
    ):
        if value is not None:
            temperature[name] = value
    if (
        row.freeze_limit_c is not None
        and row.temp_min_c is not None
        and row.freeze_limit_c >= row.temp_min_c
    ):
        # A freeze limit inside the range cannot be told apart from "low"; the range wins.
        del temperature["freeze_c"]
    sections: dict[str, Any] = {"temperature": temperature}
    if row.stability_budget_s:
        sections["budget"] = {"hours": row.stability_budget_s / 3600.0}
    if row.mkt_limit_c is not None:
        mkt: dict[str, Any] = {"limit_c": row.mkt_limit_c}
        if row.mkt_delta_h_j_mol is not None:
            mkt["delta_h_j_mol"] = row.mkt_delta_h_j_mol
        # USP <1079.2>: controlled cold products on 24 h, controlled room temperature on 30 days.
        cold = row.temp_max_c is not None and row.temp_max_c <= 8.0
        mkt["window_h"] = 24.0 if cold else 30 * 24.0
        sections["mkt"] = mkt
    if row.rh_min is not None or row.rh_max is not None:
        humidity: dict[str, Any] = {"delay_min": row.alarm_delay_s / 60.0}
        if row.rh_min is not None:
            humidity["min_rh"] = row.rh_min
        if row.rh_max is not None:
            humidity["max_rh"] = row.rh_max
        sections["humidity"] = humidity
    return parse_definition(sections, source=f"product {row.gtin}")


def settings_rules(
    *, offline_factor: float, battery_threshold: float, clear_delay_s: float
) -> RuleSet:
    """The bottom layer: the engine's settings."""
    clear = {"clear_delay_min": clear_delay_s / 60.0}
    return RuleSet.model_validate(
        {
            "temperature": clear,
            "budget": clear,
            "mkt": clear,
            "humidity": clear,
            "offline": {**clear, "factor": offline_factor},
            "battery": {**clear, "below": battery_threshold},
            "forecast": clear,
        }
    )


def rule_layers(
    base: RuleSet,
    rules_file: RulesFile,
    file_name: str,
    *,
    product: ProductRow | None,
    product_stored: StoredRules | None,
    shipment: str | None,
    shipment_stored: StoredRules | None,
    on_error: Callable[[str, ConfigError], None] | None = None,
) -> list[Layer]:
    """The layers of a shipment's rules (or, with ``shipment`` None, of a product's), bottom
    first, for :func:`resolve`; a layer that is not there is ``(name, None)``. Without a
    ``product`` row there are no product layers (``product_stored`` is not looked at).

    A product row or a stored definition that does not parse raises ConfigError; with
    ``on_error`` it is reported there with the layer's name and left out (``None``) instead.
    """

    def parsed(name: str, parse: Callable[[], RuleSet]) -> Layer:
        try:
            return (name, parse())
        except ConfigError as exc:
            if on_error is None:
                raise
            on_error(name, exc)
            return (name, None)

    def stored(scope: str, key: str, rules: StoredRules | None) -> Layer:
        if rules is None:
            return (f"stored {scope} rules {key}", None)
        name = f"stored {scope} rules {key} v{rules.version}"
        return parsed(name, lambda: parse_definition(rules.definition, source=name))

    layers: list[Layer] = [("settings", base), (f"{file_name}: defaults", rules_file.defaults)]
    if product is not None:
        gtin = str(product.gtin)
        layers.append(parsed(f"product {gtin} (row)", lambda: product_rules(product)))
        layers.append((f"{file_name}: products.{gtin}", rules_file.products.get(gtin)))
        layers.append(stored("product", gtin, product_stored))
    if shipment is not None:
        layers.append((f"{file_name}: shipments.{shipment}", rules_file.shipments.get(shipment)))
        layers.append(stored("shipment", shipment, shipment_stored))
    return layers


def merge(base: RuleSet, override: RuleSet, *, source: str = "override") -> RuleSet:
    """``override`` on top of ``base``, field by field; a bad combination names ``source``."""
    merged: dict[str, Any] = {}
    for name in SECTIONS:
        low: _Section | None = getattr(base, name)
        high: _Section | None = getattr(override, name)
        if low is None and high is None:
            continue
        fields = {}
        for part in (low, high):
            if part is not None:
                fields.update(part.model_dump(exclude_unset=True))
        merged[name] = fields
    try:
        return RuleSet.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, source, RuleSet, what="rules")) from None


@dataclass(frozen=True, slots=True)
class EffectiveRules:
    """The merged rules of one shipment: a concrete section per enabled rule, else None."""

    temperature: TemperatureRule | None
    budget: BudgetRule | None
    mkt: MKTRule | None
    humidity: HumidityRule | None
    offline: OfflineRule | None
    battery: BatteryRule | None
    forecast: ForecastRule | None
    sources: tuple[str, ...] = field(default=())

    def snapshot(self, section: str, **extra: Any) -> dict[str, Any]:
        """The rule as it is now, for the row that it judged (thresholds "as they were")."""
        rule = getattr(self, section)
        body = rule.model_dump(mode="json") if rule is not None else {}
        return {"rule": section, **body, **extra, "sources": list(self.sources)}

    def section(self, name: str) -> _Section | None:
        """A section by name."""
        value: _Section | None = getattr(self, name)
        return value


def resolve(
    layers: Sequence[tuple[str, RuleSet | None]],
    *,
    on_error: Callable[[str, ConfigError], None] | None = None,
) -> EffectiveRules:
    """Merge layers bottom-up into the effective rules; sections nothing enables are None.

    A layer whose combination with the ones below is invalid raises ConfigError naming it; with
    ``on_error`` it is reported there and left out instead (a running engine keeps judging with
    the layers that make sense rather than stopping).
    """
    merged = RuleSet()
    sources: list[str] = []
    for source, layer in layers:
        if layer is None:
            continue
        try:
            merged = merge(merged, layer, source=source)
        except ConfigError as exc:
            if on_error is None:
                raise
            on_error(source, exc)
            continue
        sources.append(source)
    sections: dict[str, Any] = {}
    for name in SECTIONS:
        rule: _Section | None = getattr(merged, name)
        if rule is not None and (not rule.enabled or not _has_threshold(name, rule)):
            rule = None  # switched off, or nothing to judge against (a budget rule with no budget)
        sections[name] = rule
    return EffectiveRules(**sections, sources=tuple(sources))


def _has_threshold(name: str, rule: _Section) -> bool:
    if isinstance(rule, TemperatureRule):
        return rule.low_c is not None or rule.high_c is not None or rule.freeze_c is not None
    if isinstance(rule, BudgetRule):
        return rule.hours is not None
    if isinstance(rule, MKTRule):
        return rule.limit_c is not None
    if isinstance(rule, HumidityRule):
        return rule.min_rh is not None or rule.max_rh is not None
    if isinstance(rule, OfflineRule):
        return rule.factor is not None or rule.minutes is not None
    if isinstance(rule, BatteryRule):
        return rule.below is not None
    return name == "forecast"
