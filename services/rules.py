"""Alert rules stored per product and per shipment: read them (everyone), add a version (admins),
and the *effective* rules that result, as the rules engine judges by them.

A product's or shipment's stored rules are one layer of the rules the engine judges with (the
layer order is in :mod:`alerts.rules`), written in the rules file's format: the JSON form of one
``[products."<GTIN>"]`` or ``[shipments."<reference>"]`` table of ``rules/example.toml``.

The effective rules are those of :mod:`alerts.in_force`, read and stacked exactly as the engine
reads and stacks them (:func:`~alerts.in_force.load_rules`), so what the API shows is what the
engine judges by.

A change is never an edit. :func:`add_product_version` and :func:`add_shipment_version`
validate the definition the way a rules file is validated (:func:`alerts.rules.parse_definition`:
a misspelt field is a :class:`~coldchain.errors.ConfigError` that names it) and check that it
merges with the layers below it, then store it as a new version with who (the caller) and why
(``reason``, also the "why" of the audit entry). The highest version is in force; the rules
engine takes it at its next round, and the older versions stay listed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from alerts.in_force import RuleSources, layers_of, load_rules
from alerts.layers import EffectiveRules, Layer, resolve
from alerts.rules import (
    SECTIONS,
    BatteryRule,
    BudgetRule,
    ForecastRule,
    HumidityRule,
    MKTRule,
    OfflineRule,
    RiskRule,
    TemperatureRule,
    parse_definition,
)
from coldchain.errors import ConfigError
from db.queries import products as product_q
from db.queries import rules as rule_q
from db.queries import shipments as shipment_q
from db.queries.limits import RuleInputs, rule_inputs
from db.types import Conn, Row
from services.caller import Caller, acting

# The answers carry the engine's own rule sections (its models, its validation): they are part
# of this interface, so the API documents them without reaching into the rules engine.
__all__ = [
    "SECTIONS",
    "BatteryRule",
    "BudgetRule",
    "EffectiveRules",
    "ForecastRule",
    "HumidityRule",
    "MKTRule",
    "OfflineRule",
    "RiskRule",
    "ScopeRules",
    "TemperatureRule",
    "add_product_version",
    "add_shipment_version",
    "product_rules",
    "product_versions",
    "shipment_rules",
    "shipment_versions",
]


@dataclass(frozen=True, slots=True)
class ScopeRules:
    """A product's or shipment's stored version in force (None: none ever stored) and the
    merged rules that result (for a product: what its shipments get before shipment rules)."""

    scope: Literal["product", "shipment"]
    gtin: str | None
    shipment_id: int | None
    shipment_reference: str | None
    current: Row | None
    effective: EffectiveRules


# ---- reads ----------------------------------------------------------------------------------


def product_rules(conn: Conn, cfg: RuleSources, *, gtin: str) -> ScopeRules:
    """The product's stored rules in force and the merged rules its shipments start from;
    NotFoundError for an unknown product."""
    product_q.get_product(conn=conn, gtin=gtin)
    return _scope_rules(conn, cfg, gtin=gtin)


def shipment_rules(conn: Conn, cfg: RuleSources, *, key: str) -> ScopeRules:
    """The shipment's (id or reference) stored rules in force and the merged rules the engine
    judges it with; NotFoundError for an unknown shipment."""
    shipment = rule_q.get_shipment_scope(conn=conn, key=key)
    return _scope_rules(conn, cfg, shipment_id=int(shipment["shipment_id"]))


def product_versions(conn: Conn, *, gtin: str) -> list[Row]:
    """Every version of the product's stored rules, oldest first (the last is in force)."""
    product_q.get_product(conn=conn, gtin=gtin)
    return rule_q.rule_versions(conn=conn, gtin=gtin)


def shipment_versions(conn: Conn, *, key: str) -> list[Row]:
    """Every version of the shipment's stored rules, oldest first (the last is in force)."""
    shipment_id = shipment_q.find_shipment_id(conn=conn, key=key)
    return rule_q.rule_versions(conn=conn, shipment_id=shipment_id)


# ---- changes --------------------------------------------------------------------------------


def add_product_version(
    conn: Conn,
    caller: Caller,
    cfg: RuleSources,
    *,
    gtin: str,
    definition: Any,
    reason: str,
    source: str = "definition",
) -> ScopeRules:
    """Store a new version of the product's rules (admins), with a reason; it takes effect at
    the engine's next round. ``source`` names the definition in a ConfigError's message."""
    caller.require("admin")
    product_q.get_product(conn=conn, gtin=gtin)
    layer = _validated(definition, below=_layers(conn, cfg, gtin=gtin)[:-1], source=source)
    with acting(conn, caller, reason):
        rule_q.add_rule_version(
            conn=conn, gtin=gtin, definition=layer, created_by=caller.actor, reason=reason
        )
    return _scope_rules(conn, cfg, gtin=gtin)


def add_shipment_version(
    conn: Conn,
    caller: Caller,
    cfg: RuleSources,
    *,
    key: str,
    definition: Any,
    reason: str,
    source: str = "definition",
) -> ScopeRules:
    """Store a new version of the shipment's rules (admins), with a reason; it takes effect at
    the engine's next round. ``source`` names the definition in a ConfigError's message."""
    caller.require("admin")
    shipment_id = int(rule_q.get_shipment_scope(conn=conn, key=key)["shipment_id"])
    below = _layers(conn, cfg, shipment_id=shipment_id)[:-1]
    layer = _validated(definition, below=below, source=source)
    with acting(conn, caller, reason):
        rule_q.add_rule_version(
            conn=conn,
            shipment_id=shipment_id,
            definition=layer,
            created_by=caller.actor,
            reason=reason,
        )
    return _scope_rules(conn, cfg, shipment_id=shipment_id)


# ---- the layers, as the engine stacks them --------------------------------------------------


def _validated(definition: Any, *, below: list[Layer], source: str) -> dict[str, Any]:
    """The definition as it is stored (validated, only the fields given); ConfigError naming
    each bad field when it is not a valid layer or does not merge with the layers below it."""
    layer = parse_definition(definition, source=source)
    merged_source = f"{source} (merged with the rules below it)"

    def only_ours(name: str, exc: ConfigError) -> None:
        # A layer below that is broken already is left out, as the engine leaves it out.
        if name == merged_source:
            raise exc

    resolve([*below, (merged_source, layer)], on_error=only_ours)
    return layer.model_dump(mode="json", exclude_unset=True)


def _inputs(conn: Conn, *, gtin: str | None = None, shipment_id: int | None = None) -> RuleInputs:
    """What the database holds of one scope's layers (the statement the engine runs)."""
    found = rule_inputs(
        conn=conn,
        shipment_ids=[] if shipment_id is None else [shipment_id],
        gtins=[] if gtin is None else [gtin],
    )
    return found[0]  # the scope was found just before: its row is there


def _layers(
    conn: Conn, cfg: RuleSources, *, gtin: str | None = None, shipment_id: int | None = None
) -> list[Layer]:
    return layers_of(_inputs(conn, gtin=gtin, shipment_id=shipment_id), cfg)


def _scope_rules(
    conn: Conn, cfg: RuleSources, *, gtin: str | None = None, shipment_id: int | None = None
) -> ScopeRules:
    """The version in force of a scope and the merged rules, as :func:`alerts.in_force.load_rules`
    gives them to the engine."""
    ((found, effective),) = load_rules(
        conn,
        cfg,
        shipment_ids=[] if shipment_id is None else [shipment_id],
        gtins=[] if gtin is None else [gtin],
    )
    current = rule_q.current_rule_version(conn=conn, gtin=gtin, shipment_id=shipment_id)
    return ScopeRules(
        scope="product" if shipment_id is None else "shipment",
        gtin=found.gtin,
        shipment_id=found.shipment_id,
        shipment_reference=found.reference,
        current=current,
        effective=effective,
    )
