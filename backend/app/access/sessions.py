"""Signed-in sessions: one row per device, named by the `sid` claim of its tokens."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.security import new_id
from app.models import AuthSession, User
from app.models.base import utcnow


async def create(
    db: AsyncSession,
    *,
    user_id: int,
    refresh_jti: str,
    expires_at: datetime,
    client_ip: str | None,
    user_agent: str | None,
) -> AuthSession:
    row = AuthSession(
        id=new_id(),
        user_id=user_id,
        refresh_jti=refresh_jti,
        expires_at=expires_at,
        client_ip=client_ip,
        user_agent=user_agent,
    )
    db.add(row)
    await db.flush()
    return row


async def get_live_with_user(
    db: AsyncSession, session_id: str, user_id: int
) -> tuple[AuthSession, User] | None:
    """The session and its user, only if the session is unrevoked, unexpired and the user's."""
    row = (
        await db.execute(
            select(AuthSession, User)
            .join(User, User.id == AuthSession.user_id)
            .where(
                AuthSession.id == session_id,
                AuthSession.user_id == user_id,
                AuthSession.revoked_at.is_(None),
                AuthSession.expires_at > utcnow(),
            )
        )
    ).first()
    return (row[0], row[1]) if row else None


async def rotate_refresh(
    db: AsyncSession,
    session_id: str,
    old_jti: str,
    new_jti: str,
    rotated_at: datetime,
    expires_at: datetime,
) -> bool:
    """Swap the session's refresh token id, only if `old_jti` is still the current one; the old
    id and the time are kept for the grace window of concurrent refreshes."""
    result = await db.execute(
        update(AuthSession)
        .where(
            AuthSession.id == session_id,
            AuthSession.refresh_jti == old_jti,
            AuthSession.revoked_at.is_(None),
        )
        .values(
            refresh_jti=new_jti,
            previous_refresh_jti=old_jti,
            rotated_at=rotated_at,
            expires_at=expires_at,
            last_used_at=rotated_at,
        )
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0) == 1)


async def revoke(db: AsyncSession, session_id: str) -> None:
    await db.execute(
        update(AuthSession)
        .where(AuthSession.id == session_id, AuthSession.revoked_at.is_(None))
        .values(revoked_at=utcnow())
        .execution_options(synchronize_session=False)
    )


async def revoke_all_for_user(
    db: AsyncSession, user_id: int, *, except_session_id: str | None = None
) -> None:
    statement = update(AuthSession).where(
        AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None)
    )
    if except_session_id is not None:
        statement = statement.where(AuthSession.id != except_session_id)
    await db.execute(
        statement.values(revoked_at=utcnow()).execution_options(synchronize_session=False)
    )


async def list_live(db: AsyncSession, user_id: int) -> list[AuthSession]:
    result = await db.scalars(
        select(AuthSession)
        .where(
            AuthSession.user_id == user_id,
            AuthSession.revoked_at.is_(None),
            AuthSession.expires_at > utcnow(),
        )
        .order_by(AuthSession.last_used_at.desc())
    )
    return list(result)
