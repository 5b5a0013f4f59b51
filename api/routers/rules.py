"""Alert rules stored per product and per shipment: read them (everyone), change them (admins).

A product's or shipment's stored rules are one layer of the rules the engine judges with (the
layer order is in :mod:`alerts.rules`), written in the rules file's format: the JSON form of one
``[products."<GTIN>"]`` or ``[shipments."<reference>"]`` table of ``rules/example.toml``.

A change is never an edit. ``PUT`` validates the definition the way a rules file is validated
(:func:`alerts.rules.parse_definition`: a misspelt field is a 422 that names it) and checks
that it merges with the layers below it, then stores it as a new version with who (the caller)
and why (``reason``, also the "why" of the audit entry). The highest version is in force; the
rules engine takes it at its next round, and the older versions stay listed.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, HTTPException, Path, Query
from pydantic import AwareDatetime, BaseModel, Field, StringConstraints

from alerts.layers import EffectiveRules, ProductRow, resolve, rule_layers
from alerts.rules import (
    SECTIONS,
    BatteryRule,
    BudgetRule,
    ForecastRule,
    HumidityRule,
    MKTRule,
    OfflineRule,
    RuleSet,
    TemperatureRule,
    parse_definition,
)
from api.deps import (
    AuditedConnDep,
    ClientDep,
    ConnDep,
    PrincipalDep,
    ReportSettingsDep,
    requires,
)
from api.routers.shipments import ShipmentKey
from api.schemas import ErrorOut
from coldchain.errors import ConfigError
from db.queries import web
from db.queries.web import Conn, Row
from reports.service import ReportSettings, stored_rules
from security.audit import apply_context

router = APIRouter(tags=["rules"])
_ADMIN = requires("admin")

Layers = list[tuple[str, RuleSet | None]]

GtinPath = Annotated[str, Path(pattern=r"^[0-9]{14}$", description="GTIN-14")]
Reason = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=2000),
    Query(description="why the rules change: stored with the version and in the audit trail"),
]
Definition = Annotated[
    dict[str, Any],
    Body(
        description="one layer of rules in the rules file's format (rules/example.toml): "
        "sections temperature, budget, mkt, humidity, offline, battery, forecast, each with "
        "only the fields it changes; {} stores an empty layer (the layers below then apply)",
        openapi_examples={
            "shorter alarm delay": {"value": {"temperature": {"alarm_delay_min": 5}}},
            "MKT and humidity": {
                "value": {
                    "mkt": {"limit_c": 8.0, "window_h": 24},
                    "humidity": {"min_rh": 20, "max_rh": 80, "delay_min": 30},
                }
            },
        },
    ),
]

# The body is validated by parse_definition (for its messages), so FastAPI only knows it as an
# object; this documents its shape with the section schemas the responses put in the document.
_PUT = {
    **_ADMIN,
    "requestBody": {
        "content": {
            "application/json": {
                "schema": {
                    "additionalProperties": False,
                    "properties": {
                        name: {"$ref": f"#/components/schemas/{model.__name__}"}
                        for name, model in SECTIONS.items()
                    },
                }
            }
        }
    },
}

_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorOut, "description": "no such product or shipment"}
}
_PUT_RESPONSES: dict[int | str, dict[str, Any]] = {
    **_NOT_FOUND,
    422: {
        "model": ErrorOut,
        "description": "an invalid definition, each problem named with its field as for a "
        "rules file; nothing is stored",
    },
}


class RuleVersion(BaseModel):
    """One stored version of a product's or a shipment's rules."""

    version: int
    definition: dict[str, Any] = Field(description="the layer, in the rules file's format")
    created_by: str
    created_at: AwareDatetime
    reason: str | None


class EffectiveRulesOut(BaseModel):
    """The merged rules the engine judges with: a section per rule it judges (null: switched
    off, or nothing to judge against), and the layers that made them, bottom first."""

    temperature: TemperatureRule | None
    budget: BudgetRule | None
    mkt: MKTRule | None
    humidity: HumidityRule | None
    offline: OfflineRule | None
    battery: BatteryRule | None
    forecast: ForecastRule | None
    sources: list[str]


class ScopeRules(BaseModel):
    """A product's or shipment's stored rules in force, and the merged rules that result (for
    a product: what its shipments get before any shipment rules)."""

    scope: Literal["product", "shipment"]
    gtin: str | None = Field(description="the product, or the shipment's product")
    shipment_id: int | None
    shipment_reference: str | None
    current: RuleVersion | None = Field(description="null when no version was ever stored")
    effective: EffectiveRulesOut


# ---- products -------------------------------------------------------------------------------


@router.get("/products/{gtin}/rules", responses=_NOT_FOUND)
def get_product_rules(gtin: GtinPath, conn: ConnDep, cfg: ReportSettingsDep) -> ScopeRules:
    """The product's stored rules in force and the merged rules its shipments start from."""
    product = web.get_product(conn=conn, gtin=gtin)
    return _scope_rules(conn, cfg, product=product)


@router.get("/products/{gtin}/rules/versions", responses=_NOT_FOUND)
def list_product_rule_versions(gtin: GtinPath, conn: ConnDep) -> list[RuleVersion]:
    """Every version of the product's stored rules, oldest first (the last is in force)."""
    web.get_product(conn=conn, gtin=gtin)
    return [RuleVersion.model_validate(r) for r in web.rule_versions(conn=conn, gtin=gtin)]


@router.put("/products/{gtin}/rules", openapi_extra=_PUT, responses=_PUT_RESPONSES)
def put_product_rules(
    gtin: GtinPath,
    definition: Definition,
    reason: Reason,
    conn: AuditedConnDep,
    principal: PrincipalDep,
    client: ClientDep,
    cfg: ReportSettingsDep,
) -> ScopeRules:
    """Store a new version of the product's rules (admins), with a reason; it takes effect at
    the engine's next round."""
    product = web.get_product(conn=conn, gtin=gtin)
    layers, _ = _layers(conn, cfg, product=product)
    layer = _validated(definition, below=layers[:-1])
    apply_context(conn, principal.context(client, reason))
    web.add_rule_version(
        conn=conn, gtin=gtin, definition=layer, created_by=principal.actor, reason=reason
    )
    return _scope_rules(conn, cfg, product=product)


# ---- shipments ------------------------------------------------------------------------------


@router.get("/shipments/{key}/rules", responses=_NOT_FOUND)
def get_shipment_rules(key: ShipmentKey, conn: ConnDep, cfg: ReportSettingsDep) -> ScopeRules:
    """The shipment's stored rules in force and the merged rules the engine judges it with."""
    shipment = web.get_shipment_scope(conn=conn, key=key)
    return _scope_rules(conn, cfg, product=_product_of(conn, shipment), shipment=shipment)


@router.get("/shipments/{key}/rules/versions", responses=_NOT_FOUND)
def list_shipment_rule_versions(key: ShipmentKey, conn: ConnDep) -> list[RuleVersion]:
    """Every version of the shipment's stored rules, oldest first (the last is in force)."""
    shipment_id = web.find_shipment_id(conn=conn, key=key)
    rows = web.rule_versions(conn=conn, shipment_id=shipment_id)
    return [RuleVersion.model_validate(r) for r in rows]


@router.put("/shipments/{key}/rules", openapi_extra=_PUT, responses=_PUT_RESPONSES)
def put_shipment_rules(
    key: ShipmentKey,
    definition: Definition,
    reason: Reason,
    conn: AuditedConnDep,
    principal: PrincipalDep,
    client: ClientDep,
    cfg: ReportSettingsDep,
) -> ScopeRules:
    """Store a new version of the shipment's rules (admins), with a reason; it takes effect at
    the engine's next round."""
    shipment = web.get_shipment_scope(conn=conn, key=key)
    product = _product_of(conn, shipment)
    layers, _ = _layers(conn, cfg, product=product, shipment=shipment)
    layer = _validated(definition, below=layers[:-1])
    apply_context(conn, principal.context(client, reason))
    web.add_rule_version(
        conn=conn,
        shipment_id=shipment["shipment_id"],
        definition=layer,
        created_by=principal.actor,
        reason=reason,
    )
    return _scope_rules(conn, cfg, product=product, shipment=shipment)


# ---- layers, as the engine stacks them ------------------------------------------------------

_BODY = "request body"


def _validated(definition: dict[str, Any], *, below: Layers) -> dict[str, Any]:
    """The definition as it is stored (validated, only the fields given); 422 naming each bad
    field when it is not a valid layer or does not merge with the layers below it."""
    try:
        layer = parse_definition(definition, source=_BODY)
        merged_source = f"{_BODY} (merged with the rules below it)"

        def only_ours(source: str, exc: ConfigError) -> None:
            # A layer below that is broken already is left out, as the engine leaves it out.
            if source == merged_source:
                raise exc

        resolve([*below, (merged_source, layer)], on_error=only_ours)
    except ConfigError as exc:
        raise HTTPException(status_code=422, detail=str(exc)) from None
    return layer.model_dump(mode="json", exclude_unset=True)


def _layers(
    conn: Conn, cfg: ReportSettings, *, product: Row | None, shipment: Row | None = None
) -> tuple[Layers, Row | None]:
    """The layers of a product's (or a shipment's) rules, bottom first, as the engine stacks
    them (:func:`alerts.rules.rule_layers`), and the stored version in force of that scope,
    which is the last layer."""
    product_stored = shipment_stored = None
    if product is not None:
        product_stored = web.current_rule_version(conn=conn, gtin=str(product["gtin"]))
    if shipment is not None:
        shipment_stored = web.current_rule_version(conn=conn, shipment_id=shipment["shipment_id"])
    layers = rule_layers(
        cfg.base_rules,
        cfg.rules_file,
        cfg.rules_file_name,
        product=None if product is None else ProductRow.from_columns(product),
        product_stored=stored_rules(product_stored),
        shipment=None if shipment is None else str(shipment["reference"]),
        shipment_stored=stored_rules(shipment_stored),
        # A product row the engine cannot read, or a definition stored before validation
        # existed (or by hand): left out, as the engine leaves it out.
        on_error=lambda source, exc: None,
    )
    return layers, product_stored if shipment is None else shipment_stored


def _product_of(conn: Conn, shipment: Row) -> Row | None:
    gtin = shipment["product_gtin"]
    return None if gtin is None else web.get_product(conn=conn, gtin=gtin)


def _scope_rules(
    conn: Conn, cfg: ReportSettings, *, product: Row | None, shipment: Row | None = None
) -> ScopeRules:
    """The answer of the GET and PUT routes: the version in force and the merged rules."""
    layers, current = _layers(conn, cfg, product=product, shipment=shipment)
    return ScopeRules(
        scope="product" if shipment is None else "shipment",
        gtin=None if product is None else product["gtin"],
        shipment_id=None if shipment is None else shipment["shipment_id"],
        shipment_reference=None if shipment is None else shipment["reference"],
        current=None if current is None else RuleVersion.model_validate(current),
        effective=_effective(resolve(layers, on_error=lambda source, exc: None)),
    )


def _effective(rules: EffectiveRules) -> EffectiveRulesOut:
    return EffectiveRulesOut(
        temperature=rules.temperature,
        budget=rules.budget,
        mkt=rules.mkt,
        humidity=rules.humidity,
        offline=rules.offline,
        battery=rules.battery,
        forecast=rules.forecast,
        sources=list(rules.sources),
    )
