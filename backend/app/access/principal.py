"""An access token → the live session and active user it names, or one uniform 401."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from app.access import sessions
from app.core.errors import UnauthorizedError
from app.core.security import InvalidTokenError, TokenCodec
from app.models import User

INVALID_TOKEN_MESSAGE = "Invalid or expired token"  # noqa: S105


def invalid_token(*, commit: bool = False) -> UnauthorizedError:
    """The one answer for every token problem, so none can be told apart from outside."""
    return UnauthorizedError(INVALID_TOKEN_MESSAGE, code="invalid_token", commit=commit)


@dataclass(frozen=True)
class Principal:
    user: User
    session_id: str


async def authenticate(db: AsyncSession, tokens: TokenCodec, access_token: str | None) -> Principal:
    if not access_token:
        raise invalid_token()
    try:
        claims = tokens.decode(access_token, "access")
    except InvalidTokenError:
        raise invalid_token() from None
    found = await sessions.get_live_with_user(db, claims.session_id, claims.user_id)
    if found is None or not found[1].is_active:
        raise invalid_token()
    return Principal(user=found[1], session_id=claims.session_id)
