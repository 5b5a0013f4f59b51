"""Alert rules stored per product and per shipment: read them (everyone), change them (admins).

A product's or shipment's stored rules are one layer of the rules the engine judges with (the
layer order is in :mod:`alerts.rules`), written in the rules file's format: the JSON form of one
``[products."<GTIN>"]`` or ``[shipments."<reference>"]`` table of ``rules/example.toml``.

A change is never an edit. ``PUT`` validates the definition the way a rules file is validated
(a misspelt field is a 422 that names it) and checks that it merges with the layers below it,
then stores it as a new version with who (the caller) and why (``reason``, also the "why" of
the audit entry). The highest version is in force; the rules engine takes it at its next round,
and the older versions stay listed. The operations are :mod:`services.rules`; the effective
rules shown are the engine's own (:mod:`alerts.in_force`).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, HTTPException, Path, Query
from pydantic import AwareDatetime, BaseModel, Field, StringConstraints

from api.deps import ClientDep, ConnDep, PrincipalDep, ReportSettingsDep, requires
from api.routers.shipments import ShipmentKey
from api.schemas import ErrorOut
from coldchain.errors import ConfigError
from services import rules
from services.caller import Caller
from services.rules import (
    SECTIONS,
    BatteryRule,
    BudgetRule,
    EffectiveRules,
    ForecastRule,
    HumidityRule,
    MKTRule,
    OfflineRule,
    RiskRule,
    TemperatureRule,
)

router = APIRouter(tags=["rules"])
_ADMIN = requires("admin")

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
    risk: RiskRule | None
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

_BODY = "request body"


@router.get("/products/{gtin}/rules", responses=_NOT_FOUND)
def get_product_rules(gtin: GtinPath, conn: ConnDep, cfg: ReportSettingsDep) -> ScopeRules:
    """The product's stored rules in force and the merged rules its shipments start from."""
    return _out(rules.product_rules(conn, cfg, gtin=gtin))


@router.get("/products/{gtin}/rules/versions", responses=_NOT_FOUND)
def list_product_rule_versions(gtin: GtinPath, conn: ConnDep) -> list[RuleVersion]:
    """Every version of the product's stored rules, oldest first (the last is in force)."""
    return [RuleVersion.model_validate(r) for r in rules.product_versions(conn, gtin=gtin)]


@router.put("/products/{gtin}/rules", openapi_extra=_PUT, responses=_PUT_RESPONSES)
def put_product_rules(
    gtin: GtinPath,
    definition: Definition,
    reason: Reason,
    conn: ConnDep,
    principal: PrincipalDep,
    client: ClientDep,
    cfg: ReportSettingsDep,
) -> ScopeRules:
    """Store a new version of the product's rules (admins), with a reason; it takes effect at
    the engine's next round."""
    caller = Caller.of(principal, client)
    try:
        scope = rules.add_product_version(
            conn, caller, cfg, gtin=gtin, definition=definition, reason=reason, source=_BODY
        )
    except ConfigError as exc:
        raise HTTPException(status_code=422, detail=str(exc)) from None
    return _out(scope)


# ---- shipments ------------------------------------------------------------------------------


@router.get("/shipments/{key}/rules", responses=_NOT_FOUND)
def get_shipment_rules(key: ShipmentKey, conn: ConnDep, cfg: ReportSettingsDep) -> ScopeRules:
    """The shipment's stored rules in force and the merged rules the engine judges it with."""
    return _out(rules.shipment_rules(conn, cfg, key=key))


@router.get("/shipments/{key}/rules/versions", responses=_NOT_FOUND)
def list_shipment_rule_versions(key: ShipmentKey, conn: ConnDep) -> list[RuleVersion]:
    """Every version of the shipment's stored rules, oldest first (the last is in force)."""
    return [RuleVersion.model_validate(r) for r in rules.shipment_versions(conn, key=key)]


@router.put("/shipments/{key}/rules", openapi_extra=_PUT, responses=_PUT_RESPONSES)
def put_shipment_rules(
    key: ShipmentKey,
    definition: Definition,
    reason: Reason,
    conn: ConnDep,
    principal: PrincipalDep,
    client: ClientDep,
    cfg: ReportSettingsDep,
) -> ScopeRules:
    """Store a new version of the shipment's rules (admins), with a reason; it takes effect at
    the engine's next round."""
    caller = Caller.of(principal, client)
    try:
        scope = rules.add_shipment_version(
            conn, caller, cfg, key=key, definition=definition, reason=reason, source=_BODY
        )
    except ConfigError as exc:
        raise HTTPException(status_code=422, detail=str(exc)) from None
    return _out(scope)


def _out(scope: rules.ScopeRules) -> ScopeRules:
    """The answer of the GET and PUT routes: the version in force and the merged rules."""
    return ScopeRules(
        scope=scope.scope,
        gtin=scope.gtin,
        shipment_id=scope.shipment_id,
        shipment_reference=scope.shipment_reference,
        current=None if scope.current is None else RuleVersion.model_validate(scope.current),
        effective=_effective(scope.effective),
    )


def _effective(effective: EffectiveRules) -> EffectiveRulesOut:
    return EffectiveRulesOut(
        temperature=effective.temperature,
        budget=effective.budget,
        mkt=effective.mkt,
        humidity=effective.humidity,
        offline=effective.offline,
        battery=effective.battery,
        forecast=effective.forecast,
        risk=effective.risk,
        sources=list(effective.sources),
    )
