"""Products and their stability profiles."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from api.deps import ConnDep
from api.schemas import Product
from db.queries import products as product_q

router = APIRouter(prefix="/products", tags=["products"])


@router.get("")
def list_products(conn: ConnDep) -> list[Product]:
    """Every product with its labelled range."""
    return [Product.model_validate(r) for r in product_q.list_products(conn=conn)]


@router.get("/{gtin}")
def get_product(
    gtin: Annotated[str, Path(pattern=r"^[0-9]{14}$", description="GTIN-14")], conn: ConnDep
) -> Product:
    """One product by its 14-digit GTIN."""
    return Product.model_validate(product_q.get_product(conn=conn, gtin=gtin))
