"""One-time links mailed to a user: confirm an e-mail address, reset a password.

A link carries 256 random bits. Only their SHA-256 is stored: a copy of the database yields no
working link, and unlike a signed token a link can be used once and withdrawn. Taking a link
(`take`) marks it used in the same statement that checks it is unused and unexpired, so two
clicks racing each other cannot both succeed.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from urllib.parse import quote

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import BadRequestError
from app.models import AccountToken, TokenPurpose, User
from app.models.base import utcnow

TOKEN_BYTES = 32
MAX_TOKEN_CHARS = 128
# The SPA pages the links open (they post the token back to the API).
PAGES = {TokenPurpose.VERIFY_EMAIL: "/verify-email", TokenPurpose.RESET_PASSWORD: "/reset-password"}


def invalid_link() -> BadRequestError:
    return BadRequestError(
        "This link is invalid, was already used or has expired. Ask for a new one.",
        code="invalid_link",
    )


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def url(public_url: str, purpose: TokenPurpose, token: str) -> str:
    return f"{public_url}{PAGES[purpose]}?token={quote(token)}"


async def issue(
    db: AsyncSession, user: User, purpose: TokenPurpose, email: str, valid_for: timedelta
) -> str:
    """A new link token for `user` (earlier unused ones for the same purpose stop working)."""
    now = utcnow()
    await withdraw(db, user.id, purpose)
    token = secrets.token_urlsafe(TOKEN_BYTES)
    db.add(
        AccountToken(
            user_id=user.id,
            purpose=purpose,
            token_hash=_digest(token),
            email=email,
            created_at=now,
            expires_at=now + valid_for,
        )
    )
    await db.flush()
    return token


async def take(db: AsyncSession, purpose: TokenPurpose, token: str) -> AccountToken:
    """Use a link: the token's row, now marked used. Raises `invalid_link` otherwise."""
    if not token or len(token) > MAX_TOKEN_CHARS:
        raise invalid_link()
    digest = _digest(token)
    now = utcnow()
    taken = await db.execute(
        update(AccountToken)
        .where(
            AccountToken.token_hash == digest,
            AccountToken.purpose == purpose,
            AccountToken.used_at.is_(None),
            AccountToken.expires_at > now,
        )
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    if getattr(taken, "rowcount", 0) != 1:
        raise invalid_link()
    row = await db.scalar(select(AccountToken).where(AccountToken.token_hash == digest))
    assert row is not None
    return row


async def withdraw(db: AsyncSession, user_id: int, purpose: TokenPurpose) -> None:
    """Make every unused link of this purpose stop working."""
    await db.execute(
        update(AccountToken)
        .where(
            AccountToken.user_id == user_id,
            AccountToken.purpose == purpose,
            AccountToken.used_at.is_(None),
        )
        .values(used_at=utcnow())
        .execution_options(synchronize_session=False)
    )
