"""Prices: `/api/admin/prices` (admins)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, status
from fastapi.responses import JSONResponse

from app.access.dependencies import AdminUser, require_admin
from app.billing import service
from app.billing.context import BillingContextDep
from app.billing.schemas import ImportResult, PriceCreate, PriceList, PriceRead
from app.core.deps import SessionDep
from app.core.ids import RowId

router = APIRouter(
    prefix="/api/admin/prices", tags=["admin-prices"], dependencies=[Depends(require_admin)]
)


@router.get("")
async def list_prices(ctx: BillingContextDep, db: SessionDep) -> PriceList:
    """Every price version, newest first per model (the ones charged now marked `in_force`), and
    the served models that have no price."""
    return await service.list_prices(db, ctx.runtime.current.currency)


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_price(body: PriceCreate, db: SessionDep, admin: AdminUser) -> PriceRead:
    """A model's (or a channel's) price from `effective_from` on: a new version, so calls already
    made keep their cost."""
    return await service.create(db, body, admin.id)


@router.delete("/{price_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_price(price_id: RowId, db: SessionDep) -> None:
    await service.delete(db, price_id)


@router.get("/export")
async def export_prices(ctx: BillingContextDep, db: SessionDep) -> JSONResponse:
    """The prices in force, as a JSON file `POST /import` reads."""
    return JSONResponse(
        await service.export(db, ctx.runtime.current.currency),
        headers={"Content-Disposition": 'attachment; filename="prices.json"'},
    )


@router.post("/import")
async def import_prices(
    db: SessionDep,
    admin: AdminUser,
    data: Annotated[dict[str, Any], Body(description="This gateway's export, or LiteLLM's file")],
    only_served: Annotated[
        bool, Query(description="Of LiteLLM's file, only the models a channel serves")
    ] = True,
) -> ImportResult:
    """Add prices from this gateway's export or LiteLLM's `model_prices_and_context_window.json`
    (uploaded; nothing is fetched). Unchanged prices are skipped."""
    return await service.import_prices(db, data, admin.id, only_served=only_served)
