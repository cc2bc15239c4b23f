"""Prepaid balances: top-ups and adjustments by admins, redemption codes, and their trail.

A balance changes in one statement (`balance = balance + amount`, refused below zero), with an
entry saying who changed it, by how much and why, in the same transaction; the ledger hears of it
once the transaction has committed. Calls take their cost from it through the call-log writer.
Codes are random (100 bits), kept only as SHA-256, and redeemed in one conditional UPDATE, so
one code can never be redeemed twice, however many try at once.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.billing.budgets import balance_key
from app.billing.ledger import Ledger
from app.core.db import after_commit, get_or_404
from app.core.errors import BadRequestError, ConflictError
from app.core.events import announce
from app.core.pagination import PageParams, paginate
from app.models import BalanceEntry, RedemptionCode, User
from app.models.base import utcnow

CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud, typed by hand
CODE_GROUPS, CODE_GROUP_LENGTH = 4, 5  # 20 characters of 32: 100 bits
MAX_CODES_PER_BATCH = 1000


def _normalise(code: str) -> str:
    return "".join(ch for ch in code.upper() if ch.isalnum())


def _hash(code: str) -> str:
    return hashlib.sha256(_normalise(code).encode()).hexdigest()


def new_code() -> str:
    groups = [
        "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_GROUP_LENGTH))
        for _ in range(CODE_GROUPS)
    ]
    return "-".join(groups)


async def change(
    db: AsyncSession,
    ledger: Ledger,
    user_id: int,
    amount: int,
    *,
    kind: str,
    note: str = "",
    admin_id: int | None = None,
    code_id: int | None = None,
) -> BalanceEntry:
    """Add `amount` (nano-units; negative takes away) to a user's balance, starting one if they
    had none. Refused (409) if it would go below zero."""
    users = User.__table__
    left = await db.scalar(
        update(User)
        .where(User.id == user_id, func.coalesce(User.balance_nano, 0) + amount >= 0)
        .values(balance_nano=func.coalesce(users.c.balance_nano, 0) + amount)
        .returning(User.balance_nano)
    )
    if left is None:
        await get_or_404(db, User, user_id, "User")
        raise ConflictError(
            "The balance cannot go below zero", code="balance_below_zero", param="amount"
        )
    entry = BalanceEntry(
        user_id=user_id,
        amount_nano=amount,
        kind=kind,
        note=note,
        created_by_id=admin_id,
        code_id=code_id,
        balance_after_nano=int(left),
    )
    db.add(entry)
    await db.flush()
    announce(db, "credentials")  # a new balance: the user's calls are paid from it from now on

    async def credit() -> None:
        await ledger.credit(balance_key(user_id), amount)

    after_commit(db, credit)
    return entry


async def entries(
    db: AsyncSession, user_id: int, page: PageParams
) -> tuple[Sequence[BalanceEntry], int]:
    query = select(BalanceEntry).where(BalanceEntry.user_id == user_id)
    return await paginate(db, query.order_by(BalanceEntry.id.desc()), page)


async def create_codes(
    db: AsyncSession,
    *,
    count: int,
    amount: int,
    batch: str,
    expires_at: datetime | None,
    admin_id: int | None,
) -> list[str]:
    """`count` new codes worth `amount` each; returned once, never stored as they are."""
    codes = [new_code() for _ in range(count)]
    db.add_all(
        RedemptionCode(
            code_hash=_hash(code),
            hint=code[-4:],
            amount_nano=amount,
            batch=batch,
            expires_at=expires_at,
            created_by_id=admin_id,
        )
        for code in codes
    )
    await db.flush()
    return codes


async def list_codes(
    db: AsyncSession, page: PageParams, *, batch: str | None, status: str | None
) -> tuple[Sequence[RedemptionCode], int]:
    query = select(RedemptionCode)
    if batch:
        query = query.where(RedemptionCode.batch == batch)
    now = utcnow()
    if status == "redeemed":
        query = query.where(RedemptionCode.redeemed_at.is_not(None))
    elif status == "disabled":
        query = query.where(RedemptionCode.disabled_at.is_not(None))
    elif status == "expired":
        query = query.where(
            RedemptionCode.redeemed_at.is_(None),
            RedemptionCode.expires_at.is_not(None),
            RedemptionCode.expires_at <= now,
        )
    elif status == "unused":
        query = query.where(
            RedemptionCode.redeemed_at.is_(None),
            RedemptionCode.disabled_at.is_(None),
            (RedemptionCode.expires_at.is_(None)) | (RedemptionCode.expires_at > now),
        )
    return await paginate(db, query.order_by(RedemptionCode.id.desc()), page)


def code_status(code: RedemptionCode) -> str:
    if code.redeemed_at is not None:
        return "redeemed"
    if code.disabled_at is not None:
        return "disabled"
    if code.expires_at is not None and code.expires_at <= utcnow():
        return "expired"
    return "unused"


async def disable_code(db: AsyncSession, code_id: int) -> RedemptionCode:
    code = await get_or_404(db, RedemptionCode, code_id, "Code")
    if code.redeemed_at is not None:
        raise ConflictError("This code was already redeemed", code="code_redeemed")
    code.disabled_at = code.disabled_at or utcnow()
    await db.flush()
    return code


async def redeem(db: AsyncSession, ledger: Ledger, user: User, code: str) -> BalanceEntry:
    """Credit a code to the user's balance; one code, once. Every refusal says the same."""
    now = utcnow()
    found = (
        await db.execute(
            update(RedemptionCode)
            .where(
                RedemptionCode.code_hash == _hash(code),
                RedemptionCode.redeemed_at.is_(None),
                RedemptionCode.disabled_at.is_(None),
                (RedemptionCode.expires_at.is_(None)) | (RedemptionCode.expires_at > now),
            )
            .values(redeemed_by_id=user.id, redeemed_at=now)
            .returning(RedemptionCode.id, RedemptionCode.amount_nano)
        )
    ).first()
    if found is None:
        raise BadRequestError(
            "This code is not valid, was already used, or has expired",
            code="code_not_valid",
            param="code",
        )
    code_id, amount = found
    return await change(
        db, ledger, user.id, int(amount), kind="code", note="redeemed a code", code_id=code_id
    )
