"""Shipments from a CSV file (``coldchain shipments import``): the whole file validated first,
every bad row reported with its line and field, nothing applied unless every row is good (or
``skip_bad``, which applies the good rows and lists the lines it skipped); the rows applied in
one transaction, as the console or the caller who imports. Each row is checked as
:mod:`services.bookings` checks one booking; a row whose reference or external reference is
already booked is a problem of its line (so a file imported twice applies nothing the second
time and says why, row by row; ``skip_bad`` then applies only the rows not yet booked).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Final

from coldchain.errors import (
    InvalidRecordError,
)
from db.queries import bookings as q
from db.queries import lifecycle as lifecycle_q
from db.types import Conn
from services.bookings import Item, NewShipment, check_master_data, request_hash, validate
from services.caller import Caller, acting
from services.csvimport import ImportResult, RowProblem
from services.lifecycle import MANAGE

#: The columns of a shipments CSV (header row required; the optional ones may be absent).
CSV_COLUMNS: Final[tuple[str, ...]] = (
    "reference",
    "origin",
    "destination",
    "product_gtin",
    "lot",
    "quantity",
    "lane_id",
    "carrier_id",
    "carrier",
    "planned_departure",
    "planned_arrival",
    "purchase_order",
    "sales_order",
    "customer",
)


def _message(exc: InvalidRecordError) -> str:
    """What is wrong, without the field the error names first."""
    return str(exc).removeprefix(f"{exc.field}: ")


def _optional_int(raw: str, name: str) -> int | None:
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        raise InvalidRecordError(name, f"{raw!r} is not a whole number") from None


def _optional_time(raw: str, name: str) -> datetime | None:
    if not raw:
        return None
    try:
        return datetime.fromisoformat(raw)
    except ValueError:
        raise InvalidRecordError(name, f"{raw!r} is not an ISO 8601 time") from None


def parse_csv(text: str) -> tuple[list[tuple[int, NewShipment]], list[RowProblem]]:
    """Every row of a shipments CSV, validated (pure): the good ones with their line, and a
    problem per bad row (the first bad field of each). Duplicate references within the file are
    problems too."""
    reader = csv.DictReader(io.StringIO(text))
    header = reader.fieldnames or []
    unknown = [c for c in header if c not in CSV_COLUMNS]
    missing = [c for c in ("reference",) if c not in header]
    if unknown or missing:
        what = [f"unknown column {c!r}" for c in unknown] + [
            f"missing column {c!r}" for c in missing
        ]
        return [], [
            RowProblem(1, "header", "; ".join(what) + f" (columns: {', '.join(CSV_COLUMNS)})")
        ]
    good: list[tuple[int, NewShipment]] = []
    problems: list[RowProblem] = []
    seen: dict[str, int] = {}
    for row in reader:
        line = reader.line_num
        cells = {k: (v or "").strip() for k, v in row.items() if k is not None}
        try:
            if None in row:
                raise InvalidRecordError("row", "more cells than columns")
            items: tuple[Item, ...] = ()
            if cells.get("lot") or cells.get("quantity"):
                quantity = _optional_int(cells.get("quantity", ""), "quantity")
                if quantity is None:
                    raise InvalidRecordError("quantity", "required with a lot")
                items = (Item(cells.get("product_gtin", ""), cells.get("lot", ""), quantity),)
            refs = tuple(
                (kind, cells[kind]) for kind in ("purchase_order", "sales_order", "customer")
                if cells.get(kind)
            )  # fmt: skip
            new = validate(
                NewShipment(
                    reference=cells.get("reference", ""),
                    origin=cells.get("origin") or None,
                    destination=cells.get("destination") or None,
                    product_gtin=cells.get("product_gtin") or None,
                    lane_id=_optional_int(cells.get("lane_id", ""), "lane_id"),
                    carrier_id=_optional_int(cells.get("carrier_id", ""), "carrier_id"),
                    carrier=cells.get("carrier") or None,
                    planned_departure=_optional_time(cells.get("planned_departure", ""),
                                                     "planned_departure"),
                    planned_arrival=_optional_time(cells.get("planned_arrival", ""),
                                                   "planned_arrival"),
                    references=refs,
                    items=items,
                )
            )  # fmt: skip
        except InvalidRecordError as exc:
            # the row's one item is its product_gtin, lot and quantity columns
            field_name = exc.field.replace("items[0].gtin", "product_gtin").replace("items[0].", "")
            problems.append(RowProblem(line, field_name, _message(exc)))
            continue
        if new.reference in seen:
            problems.append(RowProblem(line, "reference", f"{new.reference!r} is also on line "
                                                          f"{seen[new.reference]}"))  # fmt: skip
            continue
        seen[new.reference] = line
        good.append((line, new))
    return good, problems


def import_csv(
    conn: Conn, caller: Caller, *, text: str, now: datetime, skip_bad: bool = False
) -> ImportResult:
    """Import shipments from CSV: the whole file is validated first (in the file, then against
    the database: known products, lanes, carriers; references not taken); nothing is applied
    unless every row is good, or ``skip_bad`` (the bad rows are then reported and left out).
    Applied in one transaction, set-wise."""
    caller.require(MANAGE)
    good, problems = parse_csv(text)
    with acting(conn, caller, f"shipments imported ({len(good)} rows)"), conn.transaction():
        good, more = _check_rows(conn, good)
        problems = sorted([*problems, *more], key=lambda p: p.line)
        if problems and not skip_bad:
            return ImportResult(problems=problems)
        _insert_many(conn, caller, [new for _, new in good], now=now)
    skipped = sorted({p.line for p in problems})
    return ImportResult(applied=len(good), problems=problems, skipped_lines=skipped)


def _check_rows(
    conn: Conn, rows: Sequence[tuple[int, NewShipment]]
) -> tuple[list[tuple[int, NewShipment]], list[RowProblem]]:
    gtins = sorted({n.product_gtin for _, n in rows if n.product_gtin})
    products = q.products_by_gtin(conn=conn, gtins=gtins)
    taken_refs = q.taken_references(conn=conn, references=[n.reference for _, n in rows])
    external = {
        (r["matched_kind"], r["matched_value"])
        for r in q.by_external(conn=conn, refs=[ref for _, n in rows for ref in n.references])
    }
    good, problems = [], []
    for line, new in rows:
        problem = None
        if new.product_gtin and new.product_gtin not in products:
            problem = RowProblem(line, "product_gtin", f"no product with GTIN {new.product_gtin}")
        elif new.product_gtin and products[new.product_gtin]["retired_at"] is not None:
            problem = RowProblem(line, "product_gtin", f"product {new.product_gtin} is retired")
        elif new.reference in taken_refs:
            problem = RowProblem(line, "reference", f"{new.reference!r} is already booked")
        else:
            for kind, value in new.references:
                if (kind, value) in external:
                    problem = RowProblem(line, kind, f"{value!r} belongs to another shipment")
                    break
        if problem is None and (new.lane_id is not None or new.carrier_id is not None):
            try:
                new = check_master_data(conn, new)
            except InvalidRecordError as exc:
                problem = RowProblem(line, exc.field, _message(exc))
        if problem is None:
            good.append((line, new))
        else:
            problems.append(problem)
    return good, problems


def _insert_many(conn: Conn, caller: Caller, rows: Iterable[NewShipment], *, now: datetime) -> None:
    rows = list(rows)
    if not rows:
        return
    ids = q.insert_shipments(
        conn=conn,
        rows=[
            {
                "reference": n.reference,
                "product_gtin": n.product_gtin,
                "origin": n.origin,
                "destination": n.destination,
                "planned_departure": n.planned_departure,
                "planned_arrival": n.planned_arrival,
                "carrier": n.carrier,
                "lane_id": n.lane_id,
                "carrier_id": n.carrier_id,
                "create_hash": request_hash(n),
            }
            for n in rows
        ],
    )
    refs = [(ids[n.reference], k, v) for n in rows for k, v in n.references]
    items = [(ids[n.reference], i.gtin, i.lot, i.quantity) for n in rows for i in n.items]
    q.copy_references(conn=conn, rows=refs)
    q.copy_items(conn=conn, rows=items)
    lifecycle_q.copy_events(
        conn=conn,
        rows=[(ids[n.reference], now, "create", caller.actor, "planned") for n in rows],
    )
