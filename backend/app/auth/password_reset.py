"""Choosing a new password through a mailed link (asking for the link: `account_mail`)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import links
from app.core.security import PasswordHasher
from app.models import TokenPurpose
from app.models.base import utcnow
from app.users import service as user_service


async def confirm(
    db: AsyncSession,
    hasher: PasswordHasher,
    token: str,
    new_password: str,
    *,
    revoke_api_keys: bool = False,
) -> int:
    """Set the password, sign out every session (and revoke the API keys if asked), and make
    other reset links stop working. Returns how many keys were revoked.

    The link must still belong to an active account with the address it was sent to. Having
    received it there confirms that address.
    """
    row = await links.take(db, TokenPurpose.RESET_PASSWORD, token)
    user = await user_service.get(db, row.user_id)
    if not user.is_active or user.email != row.email:
        raise links.invalid_link()
    await user_service.set_password(db, hasher, user, new_password)
    revoked = await user_service.sign_out_everywhere(db, user, revoke_api_keys=revoke_api_keys)
    await links.withdraw(db, user.id, TokenPurpose.RESET_PASSWORD)
    if user.email_verified_at is None:
        user.email_verified_at = utcnow()
    await db.flush()
    return revoked
