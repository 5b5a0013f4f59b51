"""Products and their versioned stability profiles: register, change, retire, import.

A product is what a shipment carries: its GTIN (the natural key), its labelled storage range and
limits (the columns the rules engine, the reports and the passport read) and a **stability
profile** (:class:`coldchain.thermal.stability.StabilityProfile`): allowance bands with budgets,
the freeze–thaw limit, the MKT limit. The profile is derived from the product's fields plus its
``stability`` part (bands, freeze–thaw cycles, hysteresis) by one function,
:func:`profile_of`, and stored as a new version in ``product_profiles`` whenever that derivation
changes, with who and why; a version is never edited, so a shipment can always be judged by the
version in force when it started (docs/STABILITY.md).

Every change names the version the caller read (``expected_version``): a stale one raises
:class:`VersionConflictError` and changes nothing. Creation is idempotent by GTIN: the same
product again returns the stored one (``created`` False); a different one with a GTIN already
registered raises :class:`RecordConflictError`. Products are retired, never deleted.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from coldchain.errors import InvalidRecordError, RecordConflictError
from coldchain.gs1 import normalize_gtin
from coldchain.thermal.profile_doc import profile_from_doc, profile_to_doc
from coldchain.thermal.stability import StabilityProfile
from db.queries import products as q
from db.types import Conn, Row
from services.caller import Caller, acting
from services.csvimport import ImportResult, RowProblem, parse_rows
from services.records import require_live

DEFAULT_DELTA_H_J_MOL = 83144.0
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Celsius = Annotated[float, Field(allow_inf_nan=False, ge=-273.15, le=1000)]


class AllowanceIn(BaseModel):
    """One allowance band ``[low_c, high_c)`` (absent: open end) and its total budget."""

    model_config = ConfigDict(extra="forbid")

    low_c: Celsius | None = None
    high_c: Celsius | None = None
    budget_s: Annotated[float, Field(ge=0, allow_inf_nan=False)] = Field(
        description="cumulative time allowed in the band, in seconds (72 h = 259200)"
    )


class StabilityIn(BaseModel):
    """The part of a stability profile that is not a product field: bands and freeze–thaw."""

    model_config = ConfigDict(extra="forbid")

    allowances: list[AllowanceIn] = Field(default_factory=list, max_length=50)
    max_freeze_thaw_cycles: Annotated[int, Field(ge=0)] | None = None
    thaw_hysteresis_c: Annotated[float, Field(ge=0, le=50, allow_inf_nan=False)] = 0.5


class ProductIn(BaseModel):
    """A product as registered: GTIN, name, limits and stability profile."""

    model_config = ConfigDict(extra="forbid")

    gtin: str = Field(description="GTIN-8/12/13/14; stored as GTIN-14")
    name: Name
    temp_min_c: Celsius | None = None
    temp_max_c: Celsius | None = None
    freeze_limit_c: Celsius | None = None
    alarm_delay_s: Annotated[int, Field(ge=0)] = 0
    stability_budget_s: Annotated[int, Field(ge=0)] | None = None
    mkt_delta_h_j_mol: Annotated[float, Field(gt=0, allow_inf_nan=False)] = DEFAULT_DELTA_H_J_MOL
    mkt_limit_c: Celsius | None = None
    mkt_window_days: Annotated[int, Field(ge=1, le=3650)] | None = None
    rh_min: Annotated[float, Field(ge=0, le=100)] | None = None
    rh_max: Annotated[float, Field(ge=0, le=100)] | None = None
    stability: StabilityIn = Field(default_factory=StabilityIn)

    @field_validator("gtin")
    @classmethod
    def _gtin(cls, value: str) -> str:
        return normalize_gtin(value.strip())

    # On the upper end, so that an error names a field (a model-level one would name none).
    @field_validator("temp_max_c", "rh_max")
    @classmethod
    def _above_lower(cls, value: float | None, info: ValidationInfo) -> float | None:
        lower_name = {"temp_max_c": "temp_min_c", "rh_max": "rh_min"}[str(info.field_name)]
        lower = info.data.get(lower_name)
        if value is not None and lower is not None and lower >= value:
            raise ValueError(f"{info.field_name} ({value}) must be above {lower_name} ({lower})")
        return value


def profile_of(product: ProductIn) -> StabilityProfile:
    """The product's stability profile (the one derivation: storage range, freeze limit, MKT
    limit and ΔH from the product's fields, the rest from ``stability``); raises
    :class:`InvalidRecordError` naming the field (``stability.allowances[1]``)."""
    doc = {
        "storage_low_c": product.temp_min_c,
        "storage_high_c": product.temp_max_c,
        "allowances": [a.model_dump() for a in product.stability.allowances],
        "max_freeze_thaw_cycles": product.stability.max_freeze_thaw_cycles,
        "freeze_c": product.freeze_limit_c,
        "thaw_hysteresis_c": product.stability.thaw_hysteresis_c,
        "mkt_limit_c": product.mkt_limit_c,
        "delta_h_j_mol": product.mkt_delta_h_j_mol,
    }
    try:
        return profile_from_doc(doc)
    except InvalidRecordError as exc:
        if exc.field.startswith("allowances") or exc.field in (
            "max_freeze_thaw_cycles",
            "thaw_hysteresis_c",
        ):
            field = f"stability.{exc.field}"
        else:
            field = {"storage_low_c": "temp_min_c", "storage_high_c": "temp_max_c"}.get(
                exc.field, exc.field
            )
        raise InvalidRecordError(field, str(exc).removeprefix(f"{exc.field}: ")) from None


def _stability_of(profile_row: Row | None) -> StabilityIn:
    if profile_row is None:
        return StabilityIn()
    doc = profile_row["profile"]
    return StabilityIn(
        allowances=[AllowanceIn.model_validate(a) for a in doc.get("allowances", [])],
        max_freeze_thaw_cycles=doc.get("max_freeze_thaw_cycles"),
        thaw_hysteresis_c=doc.get("thaw_hysteresis_c", 0.5),
    )


def _spec_of(row: Row, profile_row: Row | None) -> ProductIn:
    return ProductIn.model_validate(
        {
            "gtin": row["gtin"],
            **{f: row[f] for f in q.FIELDS},
            "stability": _stability_of(profile_row),
        }
    )


def _validated(data: Mapping[str, Any]) -> ProductIn:
    try:
        return ProductIn.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "product"
        raise InvalidRecordError(where, first["msg"]) from None


def _fields(spec: ProductIn) -> dict[str, Any]:
    return {f: getattr(spec, f) for f in q.FIELDS}


def _with_stability(row: Row, profile_row: Row | None) -> Row:
    return {**row, "stability": _stability_of(profile_row).model_dump()}


# ---------------------------------------------------------------------------------------------
# Reads
# ---------------------------------------------------------------------------------------------


def list_products(conn: Conn, *, include_retired: bool = True) -> list[Row]:
    """Every product (or every live one), with its current stability part."""
    rows = q.list_products(conn=conn, include_retired=include_retired)
    return [_with_stability(r, q.current_profile(conn=conn, gtin=r["gtin"])) for r in rows]


def get_product(conn: Conn, gtin: str) -> Row:
    """One product with its current stability part and profile version; NotFoundError."""
    row = q.get_product(conn=conn, gtin=gtin)
    return _with_stability(row, q.current_profile(conn=conn, gtin=gtin))


def list_profile_versions(conn: Conn, gtin: str) -> list[Row]:
    """Every stability-profile version of a product, newest first; NotFoundError."""
    q.get_product(conn=conn, gtin=gtin)
    return q.list_profiles(conn=conn, gtin=gtin)


# ---------------------------------------------------------------------------------------------
# Changes
# ---------------------------------------------------------------------------------------------


def create_product(
    conn: Conn, caller: Caller, *, product: ProductIn, reason: str = "product registered"
) -> tuple[Row, bool]:
    """Register a product and its first profile version; ``(product, created)``.

    The same product again (a retried call) returns the stored one with ``created`` False."""
    caller.require("products.manage")
    doc = profile_to_doc(profile_of(product))
    with acting(conn, caller, reason), conn.transaction():
        existing = q.lock_product(conn=conn, gtin=product.gtin)
        if existing is not None:
            if _spec_of(existing, q.current_profile(conn=conn, gtin=product.gtin)) != product:
                raise RecordConflictError(
                    f"GTIN {product.gtin} is already registered as a different product "
                    f"({existing['name']!r}, version {existing['version']}): change it with "
                    "PATCH and its version, or use another GTIN"
                )
            return get_product(conn, product.gtin), False
        q.insert_products(conn=conn, products=[{"gtin": product.gtin, **_fields(product)}])
        q.insert_profiles(
            conn=conn,
            profiles=[
                {"gtin": product.gtin, "profile": doc, "created_by": caller.actor, "reason": reason}
            ],
        )
        return get_product(conn, product.gtin), True


def _live(conn: Conn, gtin: str, expected_version: int) -> Row:
    return require_live(q.lock_product(conn=conn, gtin=gtin), f"product {gtin}", expected_version)


def update_product(
    conn: Conn,
    caller: Caller,
    *,
    gtin: str,
    changes: Mapping[str, Any],
    expected_version: int,
    reason: str,
) -> Row:
    """Change some fields of a product (``stability`` replaced whole when given); a change to
    its profile is a new profile version with ``reason``. Changing nothing changes nothing."""
    caller.require("products.manage")
    if "gtin" in changes:
        raise InvalidRecordError("gtin", "is the product's identity and cannot change")
    with acting(conn, caller, reason), conn.transaction():
        row = _live(conn, gtin, expected_version)
        profile_row = q.current_profile(conn=conn, gtin=gtin)
        before = _spec_of(row, profile_row)
        after = _validated({**before.model_dump(), **changes})
        doc = profile_to_doc(profile_of(after))
        if after == before and profile_row is not None:
            return get_product(conn, gtin)
        q.update_product(
            conn=conn, gtin=gtin, expected_version=expected_version, fields=_fields(after)
        )
        if profile_row is None or profile_row["profile"] != doc:
            q.insert_profiles(
                conn=conn,
                profiles=[
                    {"gtin": gtin, "profile": doc, "created_by": caller.actor, "reason": reason}
                ],
            )
        return get_product(conn, gtin)


def retire_product(
    conn: Conn, caller: Caller, *, gtin: str, expected_version: int, reason: str
) -> Row:
    """Retire a product: kept with its history, no longer usable for a new shipment."""
    caller.require("products.manage")
    with acting(conn, caller, reason), conn.transaction():
        _live(conn, gtin, expected_version)
        q.retire_product(conn=conn, gtin=gtin, expected_version=expected_version)
        return get_product(conn, gtin)


# ---------------------------------------------------------------------------------------------
# CSV import
# ---------------------------------------------------------------------------------------------

#: The columns of a products file; ``allowances`` is ``LOW..HIGH=BUDGET`` bands separated by
#: ``;`` (an open end left empty; the budget with a unit: ``72h``, ``30min``, ``90s``), e.g.
#: ``8..25=72h; 0..2=12h``.
CSV_COLUMNS = (
    "gtin",
    *q.FIELDS,
    "allowances",
    "max_freeze_thaw_cycles",
    "thaw_hysteresis_c",
)
_BAND = re.compile(r"^\s*(-?[0-9.]*)\s*\.\.\s*(-?[0-9.]*)\s*=\s*([0-9.]+)\s*(h|min|s)\s*$")
_UNIT_S = {"h": 3600.0, "min": 60.0, "s": 1.0}


def parse_allowances(text: str) -> list[dict[str, Any]]:
    """``8..25=72h; 0..2=12h`` as allowance objects; InvalidRecordError naming the band."""
    bands: list[dict[str, Any]] = []
    for i, part in enumerate(p for p in text.split(";") if p.strip()):
        m = _BAND.match(part)
        if m is None:
            raise InvalidRecordError(
                f"allowances[{i}]", f"{part.strip()!r} is not LOW..HIGH=BUDGET (e.g. 8..25=72h)"
            )
        low, high, amount, unit = m.groups()
        try:
            bands.append(
                {
                    "low_c": float(low) if low else None,
                    "high_c": float(high) if high else None,
                    "budget_s": float(amount) * _UNIT_S[unit],
                }
            )
        except ValueError:
            raise InvalidRecordError(f"allowances[{i}]", f"{part.strip()!r}: bad number") from None
    return bands


def _csv_row(cells: dict[str, str]) -> dict[str, Any]:
    unknown = [c for c in cells if c not in CSV_COLUMNS]
    if unknown:
        raise InvalidRecordError(unknown[0], f"unknown column (columns: {', '.join(CSV_COLUMNS)})")
    stability: dict[str, Any] = {}
    if "allowances" in cells:
        stability["allowances"] = parse_allowances(cells.pop("allowances"))
    for key in ("max_freeze_thaw_cycles", "thaw_hysteresis_c"):
        if key in cells:
            stability[key] = cells.pop(key)
    return {**cells, "stability": stability}


def import_products(
    conn: Conn, caller: Caller, *, text: str, skip_bad: bool = False, reason: str
) -> ImportResult:
    """Register the products of a CSV file (:data:`CSV_COLUMNS`): validated whole, every bad row
    reported; applied in one transaction only if every row is good, or the good ones with
    ``skip_bad``. A row identical to a stored product is counted as unchanged."""
    caller.require("products.manage")
    good, problems = parse_rows(
        text,
        ProductIn,
        required_columns=("gtin", "name"),
        convert=_csv_row,
        check=profile_of,
    )
    seen: dict[str, int] = {}
    unique: list[tuple[int, ProductIn]] = []
    for line, product in good:
        if product.gtin in seen:
            problems.append(
                RowProblem(line, "gtin", f"{product.gtin} is also on line {seen[product.gtin]}")
            )
        else:
            seen[product.gtin] = line
            unique.append((line, product))
    result = ImportResult()
    with acting(conn, caller, reason), conn.transaction():
        existing = q.products_by_gtin(conn=conn, gtins=list(seen))
        new: list[ProductIn] = []
        for line, product in unique:
            stored = existing.get(product.gtin)
            if stored is None:
                new.append(product)
            elif _spec_of(stored, q.current_profile(conn=conn, gtin=product.gtin)) == product:
                result.unchanged += 1
            else:
                problems.append(
                    RowProblem(
                        line,
                        "gtin",
                        f"{product.gtin} is registered with other values: change it with "
                        "`coldchain products update`",
                    )
                )
        result.problems = sorted(problems, key=lambda p: p.line)
        if result.problems and not skip_bad:
            return result
        result.skipped_lines = sorted({p.line for p in result.problems})
        q.insert_products(conn=conn, products=[{"gtin": p.gtin, **_fields(p)} for p in new])
        q.insert_profiles(
            conn=conn,
            profiles=[
                {
                    "gtin": p.gtin,
                    "profile": profile_to_doc(profile_of(p)),
                    "created_by": caller.actor,
                    "reason": reason,
                }
                for p in new
            ],
        )
        result.applied = len(new)
    return result
