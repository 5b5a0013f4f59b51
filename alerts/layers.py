"""How the rules of one shipment are stacked from their layers, and what they say in the end.

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
engine, the reports and the API all take their layers from it. :func:`resolve` merges them into
:class:`EffectiveRules`, and :meth:`EffectiveRules.snapshot` is the exact rule each excursion and
alert stores ("as it was when evaluated"); :func:`limits_of` is the one way from the merged rules
to a temperature range. Pure functions of values: reading the layers from the rules file and the
database is :mod:`alerts.in_force`; the form of each layer is :mod:`alerts.rules`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from alerts.rules import (
    SECTIONS,
    BatteryRule,
    BudgetRule,
    ForecastRule,
    HumidityRule,
    MKTRule,
    OfflineRule,
    RiskRule,
    RuleSet,
    RulesFile,
    Section,
    TemperatureRule,
    parse_definition,
)
from coldchain.errors import ConfigError
from coldchain.thermal.limits import Limits, limits_from_rule
from coldchain.validation import format_validation_error

__all__ = [
    "EffectiveRules",
    "Layer",
    "ProductRow",
    "StoredRules",
    "limits_of",
    "merge",
    "product_rules",
    "resolve",
    "rule_layers",
    "settings_rules",
]


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
            "risk": clear,
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
        low: Section | None = getattr(base, name)
        high: Section | None = getattr(override, name)
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
    risk: RiskRule | None
    sources: tuple[str, ...] = field(default=())

    def snapshot(self, section: str, **extra: Any) -> dict[str, Any]:
        """The rule as it is now, for the row that it judged (thresholds "as they were")."""
        rule = getattr(self, section)
        body = rule.model_dump(mode="json") if rule is not None else {}
        return {"rule": section, **body, **extra, "sources": list(self.sources)}

    def section(self, name: str) -> Section | None:
        """A section by name."""
        value: Section | None = getattr(self, name)
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
        rule: Section | None = getattr(merged, name)
        if rule is not None and (not rule.enabled or not _has_threshold(name, rule)):
            rule = None  # switched off, or nothing to judge against (a budget rule with no budget)
        sections[name] = rule
    return EffectiveRules(**sections, sources=tuple(sources))


def _has_threshold(name: str, rule: Section) -> bool:
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
    return name in ("forecast", "risk")


def limits_of(rules: EffectiveRules) -> Limits | None:
    """The temperature limits of merged rules (None: no temperature rule in force).

    The one way from the rules to a range: the engine judges by it and the report, the passport
    and the shipment chart show it (:mod:`alerts.in_force`).
    """
    rule = rules.temperature
    if rule is None:
        return None
    return limits_from_rule(
        low_c=rule.low_c,
        high_c=rule.high_c,
        freeze_c=rule.freeze_c,
        alarm_delay_min=rule.alarm_delay_min,
        sources=rules.sources,
    )
