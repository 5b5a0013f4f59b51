"""Products and their versioned stability profiles: read by everyone; registered, changed and
retired by the roles with ``products.manage`` (admin, qa).

Registration is idempotent by GTIN (the same body again: 200 with the stored product; a
different one: 409). A change sends ``If-Match`` with the ETag it read (428 without, 412 when
stale) and a ``reason``; a change of the stability profile is a new profile version
(``GET /products/{gtin}/profiles``), never an edit.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Response
from pydantic import AwareDatetime, BaseModel

from api.deps import ClientDep, ConnDep, PrincipalDep, requires
from api.preconditions import PRECONDITION_RESPONSES, expected_version, patch_model, set_etag
from api.schemas import ErrorOut, Product
from services import products as service
from services.caller import Caller
from services.products import ProductIn, StabilityIn

router = APIRouter(prefix="/products", tags=["products"])
_MANAGE = requires("products.manage")

GtinPath = Annotated[str, Path(pattern=r"^[0-9]{14}$", description="GTIN-14")]
ReasonQuery = Annotated[
    str, Query(min_length=1, max_length=2000, description="why: recorded in the audit trail")
]
VersionDep = Annotated[int, Depends(expected_version)]
ProductPatch = patch_model(ProductIn, exclude=("gtin",))
_WRITE_RESPONSES: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorOut, "description": "the GTIN is another product, or it is retired"},
    422: {"model": ErrorOut, "description": "a value the product may not have (field named)"},
}


class ProductOut(Product):
    """A product: its limits, its current stability part, its version (also the ETag)."""

    mkt_window_days: int | None
    stability: StabilityIn
    profile_version: int | None
    version: int
    created_at: AwareDatetime
    retired_at: AwareDatetime | None


class ProfileVersion(BaseModel):
    """One stability-profile version: the profile as judged, who made it and why."""

    gtin: str
    version: int
    profile: dict[str, Any]
    created_by: str
    reason: str
    created_at: AwareDatetime


@router.get("")
def list_products(
    conn: ConnDep,
    include_retired: Annotated[bool, Query(description="also the retired products")] = True,
) -> list[ProductOut]:
    """Every product with its labelled range and stability profile."""
    rows = service.list_products(conn, include_retired=include_retired)
    return [ProductOut.model_validate(r) for r in rows]


@router.get("/{gtin}")
def get_product(gtin: GtinPath, conn: ConnDep, response: Response) -> ProductOut:
    """One product by its 14-digit GTIN; its ETag is its version."""
    row = service.get_product(conn, gtin)
    set_etag(response, row)
    return ProductOut.model_validate(row)


@router.get("/{gtin}/profiles")
def list_profile_versions(gtin: GtinPath, conn: ConnDep) -> list[ProfileVersion]:
    """Every stability-profile version of the product, newest first."""
    return [ProfileVersion.model_validate(r) for r in service.list_profile_versions(conn, gtin)]


@router.post(
    "",
    status_code=201,
    openapi_extra=_MANAGE,
    responses={
        200: {"model": ProductOut, "description": "already registered as given"},
        **_WRITE_RESPONSES,
    },
)
def create_product(
    body: ProductIn,
    conn: ConnDep,
    principal: PrincipalDep,
    client: ClientDep,
    response: Response,
    reason: Annotated[str, Query(min_length=1, max_length=2000)] = "product registered",
) -> ProductOut:
    """Register a product with its stability profile (version 1 of it)."""
    row, created = service.create_product(
        conn, Caller.of(principal, client), product=body, reason=reason
    )
    response.status_code = 201 if created else 200
    set_etag(response, row)
    return ProductOut.model_validate(row)


@router.patch(
    "/{gtin}",
    openapi_extra=_MANAGE,
    responses=PRECONDITION_RESPONSES | _WRITE_RESPONSES,
)
def update_product(
    gtin: GtinPath,
    body: ProductPatch,  # type: ignore[valid-type]
    reason: ReasonQuery,
    version: VersionDep,
    conn: ConnDep,
    principal: PrincipalDep,
    client: ClientDep,
    response: Response,
) -> ProductOut:
    """Change some fields; ``stability`` is replaced whole and makes a new profile version."""
    row = service.update_product(
        conn,
        Caller.of(principal, client),
        gtin=gtin,
        changes=body.model_dump(exclude_unset=True),  # type: ignore[attr-defined]
        expected_version=version,
        reason=reason,
    )
    set_etag(response, row)
    return ProductOut.model_validate(row)


@router.post(
    "/{gtin}/retire",
    openapi_extra=_MANAGE,
    responses=PRECONDITION_RESPONSES | _WRITE_RESPONSES,
)
def retire_product(
    gtin: GtinPath,
    reason: ReasonQuery,
    version: VersionDep,
    conn: ConnDep,
    principal: PrincipalDep,
    client: ClientDep,
    response: Response,
) -> ProductOut:
    """Retire the product: kept with its history, no longer usable for a new shipment."""
    row = service.retire_product(
        conn, Caller.of(principal, client), gtin=gtin, expected_version=version, reason=reason
    )
    set_etag(response, row)
    return ProductOut.model_validate(row)
