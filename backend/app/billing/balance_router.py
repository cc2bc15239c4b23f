"""Balances, redemption codes and spending: `/api/admin/users/{id}/balance`, `/api/admin/codes`
(admins) and `/api/spending` (every signed-in user, their own)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, status

from app.access.dependencies import AdminUser, CurrentUser, require_admin
from app.billing import balances, spending
from app.billing.context import BillingContextDep
from app.billing.money import nano_text, to_nano
from app.billing.schemas import (
    BalanceChange,
    BalanceEntryRead,
    CodeRead,
    CodesCreate,
    CodesCreated,
    Redeem,
    Spending,
)
from app.core.db import get_or_404
from app.core.deps import SessionDep
from app.core.errors import BadRequestError
from app.core.ids import RowId
from app.core.pagination import Page, PageDep
from app.models import RedemptionCode, User
from app.models.base import utcnow

admin_router = APIRouter(
    prefix="/api/admin", tags=["admin-balances"], dependencies=[Depends(require_admin)]
)
router = APIRouter(prefix="/api/spending", tags=["spending"])


def _code(code: RedemptionCode) -> CodeRead:
    return CodeRead(
        id=code.id,
        hint=code.hint,
        amount=nano_text(code.amount_nano),
        batch=code.batch,
        status=balances.code_status(code),
        expires_at=code.expires_at,
        created_at=code.created_at,
        redeemed_by_id=code.redeemed_by_id,
        redeemed_at=code.redeemed_at,
    )


async def _spending(ctx: BillingContextDep, db: SessionDep, user: User) -> Spending:
    return await spending.summary(
        db, user, ctx.runtime.current.currency, ctx.settings.server.timezone, utcnow()
    )


@admin_router.get("/users/{user_id}/balance")
async def balance_history(user_id: RowId, db: SessionDep, page: PageDep) -> Page[BalanceEntryRead]:
    """The balance's trail: every top-up, adjustment and redeemed code, newest first."""
    await get_or_404(db, User, user_id, "User")
    rows, total = await balances.entries(db, user_id, page)
    return page.result([BalanceEntryRead.model_validate(r) for r in rows], total)


@admin_router.post("/users/{user_id}/balance", status_code=status.HTTP_201_CREATED)
async def change_balance(
    user_id: RowId, body: BalanceChange, ctx: BillingContextDep, db: SessionDep, admin: AdminUser
) -> BalanceEntryRead:
    """Top up (positive) or take away (negative); the first top-up starts a prepaid balance."""
    negative = body.amount.startswith("-")
    amount = to_nano(body.amount.lstrip("-"))
    if amount == 0:
        raise BadRequestError("The amount must not be zero", code="zero_amount", param="amount")
    entry = await balances.change(
        db,
        ctx.budgets.ledger,
        user_id,
        -amount if negative else amount,
        kind="adjust" if negative else "topup",
        note=body.note,
        admin_id=admin.id,
    )
    return BalanceEntryRead.model_validate(entry)


@admin_router.get("/users/{user_id}/spending")
async def user_spending(user_id: RowId, ctx: BillingContextDep, db: SessionDep) -> Spending:
    return await _spending(ctx, db, await get_or_404(db, User, user_id, "User"))


@admin_router.post("/codes", status_code=status.HTTP_201_CREATED)
async def create_codes(body: CodesCreate, db: SessionDep, admin: AdminUser) -> CodesCreated:
    """A batch of one-time codes, each worth `amount` on the balance of whoever redeems it.
    The codes are in this answer only."""
    if body.expires_at is not None and body.expires_at <= utcnow():
        raise BadRequestError(
            "The expiry must be in the future", code="expiry_in_past", param="expires_at"
        )
    codes = await balances.create_codes(
        db,
        count=body.count,
        amount=body.amount,
        batch=body.batch,
        expires_at=body.expires_at,
        admin_id=admin.id,
    )
    return CodesCreated(batch=body.batch, codes=codes)


@admin_router.get("/codes")
async def list_codes(
    db: SessionDep,
    page: PageDep,
    batch: Annotated[str | None, Query(max_length=64)] = None,
    code_status: Annotated[
        Literal["unused", "redeemed", "expired", "disabled"] | None, Query(alias="status")
    ] = None,
) -> Page[CodeRead]:
    rows, total = await balances.list_codes(db, page, batch=batch, status=code_status)
    return page.result([_code(r) for r in rows], total)


@admin_router.delete("/codes/{code_id}", status_code=status.HTTP_204_NO_CONTENT)
async def disable_code(code_id: RowId, db: SessionDep) -> None:
    """Make an unused code worthless."""
    await balances.disable_code(db, code_id)


@router.get("")
async def my_spending(user: CurrentUser, ctx: BillingContextDep, db: SessionDep) -> Spending:
    """What you have spent this period (your budget's, else this month), your budget and your
    keys' budgets, and what is left of your balance."""
    return await _spending(ctx, db, user)


@router.get("/balance")
async def my_balance_history(
    user: CurrentUser, db: SessionDep, page: PageDep
) -> Page[BalanceEntryRead]:
    rows, total = await balances.entries(db, user.id, page)
    return page.result([BalanceEntryRead.model_validate(r) for r in rows], total)


@router.post("/redeem")
async def redeem(
    body: Redeem, user: CurrentUser, ctx: BillingContextDep, db: SessionDep
) -> BalanceEntryRead:
    """Add a code's amount to your balance (starting one if you have none)."""
    entry = await balances.redeem(db, ctx.budgets.ledger, user, body.code)
    return BalanceEntryRead.model_validate(entry)
