"""Excursions across shipments (a shipment's own list is ``/shipments/{key}/excursions``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import ConnDep
from api.schemas import Excursion
from services import shipments as shipment_s

router = APIRouter(prefix="/excursions", tags=["excursions"])


@router.get("")
def list_excursions(
    conn: ConnDep,
    shipment: Annotated[str, Query(min_length=1, max_length=200, description="id or reference")],
) -> list[Excursion]:
    """The current excursions of one shipment, oldest first."""
    shipment_id = shipment_s.find_shipment(conn, key=shipment)
    return [
        Excursion.model_validate(r) for r in shipment_s.excursions(conn, shipment_id=shipment_id)
    ]
