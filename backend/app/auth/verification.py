"""Confirming e-mail addresses, and the rule that may require a confirmed one to chat."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import links
from app.core.errors import ConflictError, ForbiddenError, UnprocessableError
from app.core.events import announce
from app.core.runtime_values import RuntimeValues
from app.models import TokenPurpose, User
from app.models.base import utcnow
from app.users import service as user_service

UNVERIFIED_MESSAGE = (
    "Confirm your e-mail address first: use the link we mailed you, or ask for a new one on your "
    "profile page."
)


def may_chat(values: RuntimeValues, *, is_admin: bool, email_verified: bool) -> bool:
    return is_admin or email_verified or not values.require_verified_email


def ensure_may_chat(values: RuntimeValues, user: User) -> None:
    """403 `email_unverified` when the site requires a confirmed address and this user has none."""
    if not may_chat(values, is_admin=user.is_admin, email_verified=user.email_verified):
        raise ForbiddenError(UNVERIFIED_MESSAGE, code="email_unverified")


def ensure_can_be_sent(user: User) -> None:
    if user.email is None:
        raise UnprocessableError(
            "Add an e-mail address to your profile first", code="no_email", param="email"
        )
    if user.email_verified:
        raise ConflictError("This address is already confirmed", code="already_verified")


async def verify_email(db: AsyncSession, token: str) -> User:
    """Use a confirmation link: the address it was sent to is confirmed, if still the user's."""
    row = await links.take(db, TokenPurpose.VERIFY_EMAIL, token)
    user = await user_service.get(db, row.user_id)
    if user.email != row.email:
        raise links.invalid_link()  # the address changed since the link was sent
    user.email_verified_at = utcnow()
    await db.flush()
    announce(db, "credentials")  # the /v1 key cache holds whether the address is confirmed
    return user
