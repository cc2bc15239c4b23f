"""Choosing a new password through a mailed link (asking for the link: `account_mail`)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import links, sessions
from app.core.security import PasswordHasher
from app.models import TokenPurpose, User
from app.models.base import utcnow
from app.users import service as user_service


async def confirm(db: AsyncSession, hasher: PasswordHasher, token: str, new_password: str) -> User:
    """Set the password, sign out every session, and make other reset links stop working.

    The link must still belong to an active account with the address it was sent to. Having
    received it there confirms that address.
    """
    row = await links.take(db, TokenPurpose.RESET_PASSWORD, token)
    user = await user_service.get(db, row.user_id)
    if not user.is_active or user.email != row.email:
        raise links.invalid_link()
    await user_service.set_password(db, hasher, user, new_password)
    await sessions.revoke_all_for_user(db, user.id)
    await links.withdraw(db, user.id, TokenPurpose.RESET_PASSWORD)
    if user.email_verified_at is None:
        user.email_verified_at = utcnow()
    await db.flush()
    return user
