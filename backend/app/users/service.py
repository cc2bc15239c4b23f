"""Accounts: creation, lookup, profile changes and admin management."""

from __future__ import annotations

import secrets
from collections.abc import Sequence

from sqlalchemy import delete, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.access import sessions
from app.billing.budgets import Budget
from app.billing.schemas import apply_budget
from app.core.db import get_or_404
from app.core.errors import ConflictError
from app.core.events import announce
from app.core.pagination import PageParams, like_pattern, paginate
from app.core.security import PasswordHasher
from app.keys import service as key_service
from app.models import Agent, RecoveryCode, User, UserRole, UserStatus
from app.models.base import utcnow
from app.users.fields import username_key

LOGIN_BY_EMAIL_MARK = "@"


async def get(db: AsyncSession, user_id: int) -> User:
    return await get_or_404(db, User, user_id, "User")


async def find_for_login(db: AsyncSession, identifier: str) -> User | None:
    """By e-mail when the identifier has an "@" (usernames cannot), else by username."""
    identifier = identifier.strip()
    if LOGIN_BY_EMAIL_MARK in identifier:
        return await db.scalar(select(User).where(User.email == identifier.lower()))
    return await db.scalar(select(User).where(User.username_key == username_key(identifier)))


async def _ensure_unique(
    db: AsyncSession, *, username: str | None, email: str | None, exclude_id: int | None = None
) -> None:
    if username is not None:
        query = select(User.id).where(User.username_key == username_key(username))
        if exclude_id is not None:
            query = query.where(User.id != exclude_id)
        if await db.scalar(query) is not None:
            raise ConflictError("This username is taken", code="username_taken", param="username")
    if email is not None:
        query = select(User.id).where(User.email == email)
        if exclude_id is not None:
            query = query.where(User.id != exclude_id)
        if await db.scalar(query) is not None:
            raise ConflictError(
                "This e-mail address is already registered", code="email_taken", param="email"
            )


async def _flush_unique(db: AsyncSession) -> None:
    """Flush; a unique-constraint race lost to a concurrent request is a 409, not a 500."""
    try:
        await db.flush()
    except IntegrityError as exc:
        raise ConflictError("This username or e-mail address is already in use") from exc


async def create(
    db: AsyncSession,
    hasher: PasswordHasher,
    *,
    username: str,
    password: str,
    email: str | None = None,
    display_name: str | None = None,
    role: UserRole = UserRole.USER,
    status: UserStatus = UserStatus.ACTIVE,
    budget: Budget | None = None,
) -> User:
    """A new account (`budget`: the runtime default budget new accounts get, if any)."""
    await _ensure_unique(db, username=username, email=email)
    user = User(
        username=username,
        username_key=username_key(username),
        email=email,
        display_name=display_name,
        password_hash=await hasher.hash(password),
        role=role,
        status=status,
        budget_nano=budget.nano if budget is not None else None,
        budget_period=budget.period if budget is not None else None,
    )
    db.add(user)
    await _flush_unique(db)
    return user


async def update_profile(db: AsyncSession, user: User, changes: dict[str, object]) -> User:
    """Apply `email` / `display_name` changes given explicitly (None clears them). A new address
    is unconfirmed until its confirmation link is used."""
    if "email" in changes and changes["email"] != user.email:
        email = changes["email"]
        assert email is None or isinstance(email, str)
        await _ensure_unique(db, username=None, email=email, exclude_id=user.id)
        user.email = email
        user.email_verified_at = None
        announce(db, "credentials")  # the /v1 key cache holds whether the address is confirmed
    if "display_name" in changes:
        name = changes["display_name"]
        assert name is None or isinstance(name, str)
        user.display_name = name
    await _flush_unique(db)
    return user


async def set_password(db: AsyncSession, hasher: PasswordHasher, user: User, password: str) -> None:
    user.password_hash = await hasher.hash(password)
    user.password_changed_at = utcnow()
    await db.flush()


async def list_users(
    db: AsyncSession,
    page: PageParams,
    *,
    query: str | None = None,
    role: UserRole | None = None,
    status: UserStatus | None = None,
) -> tuple[Sequence[User], int]:
    conditions = []
    if query:
        pattern = like_pattern(query.strip().lower())
        conditions.append(
            or_(
                User.username_key.like(pattern, escape="\\"),
                User.email.like(pattern, escape="\\"),
                func.lower(User.display_name).like(pattern, escape="\\"),
            )
        )
    if role is not None:
        conditions.append(User.role == role)
    if status is not None:
        conditions.append(User.status == status)
    return await paginate(db, select(User).where(*conditions).order_by(User.id.desc()), page)


async def _count_active_admins(db: AsyncSession) -> int:
    return (
        await db.scalar(
            select(func.count())
            .select_from(User)
            .where(User.role == UserRole.ADMIN, User.status == UserStatus.ACTIVE)
        )
        or 0
    )


async def _guard_admin_change(db: AsyncSession, actor: User, target: User, action: str) -> None:
    if target.id == actor.id:
        raise ConflictError(f"You cannot {action} your own account", code="self_change")
    if target.is_admin and target.is_active and await _count_active_admins(db) <= 1:
        raise ConflictError(f"Cannot {action} the last active admin", code="last_admin")


async def admin_update(
    db: AsyncSession, actor: User, target: User, changes: dict[str, object]
) -> User:
    role = changes.get("role")
    status = changes.get("status")
    if role is not None and role != target.role and target.role is UserRole.ADMIN:
        await _guard_admin_change(db, actor, target, "demote")
    if status is UserStatus.DISABLED and target.status is not UserStatus.DISABLED:
        await _guard_admin_change(db, actor, target, "disable")
    await update_profile(
        db, target, {k: v for k, v in changes.items() if k in ("email", "display_name")}
    )
    if isinstance(role, UserRole):
        target.role = role
    if changes.get("email_verified") is not None and target.email is not None:
        # An admin vouching for (or withdrawing) the address.
        target.email_verified_at = utcnow() if changes["email_verified"] else None
    for limit in ("rpm_limit", "concurrent_streams_limit"):
        if limit in changes:
            value = changes[limit]
            setattr(target, limit, value if isinstance(value, int) else None)
    apply_budget(target, changes)
    if isinstance(status, UserStatus) and status != target.status:
        target.status = status
        if status is UserStatus.DISABLED:
            # Their tokens stop at once: every session is revoked, and API keys are refused for
            # as long as the account is disabled (re-enabling brings the keys back, not sessions).
            await sessions.revoke_all_for_user(db, target.id)
    await db.flush()
    announce(db, "credentials")  # status, role, limits: what cached key lookups hold
    return target


async def admin_reset_password(
    db: AsyncSession,
    hasher: PasswordHasher,
    target: User,
    password: str | None,
    *,
    revoke_api_keys: bool = False,
) -> tuple[str | None, int]:
    """Set a new password and sign the user out everywhere (and revoke their API keys if asked).
    Returns the password if generated, and how many keys were revoked."""
    new_password = password if password is not None else generate_password()
    await set_password(db, hasher, target, new_password)
    revoked = await sign_out_everywhere(db, target, revoke_api_keys=revoke_api_keys)
    return (None if password is not None else new_password), revoked


async def sign_out_everywhere(
    db: AsyncSession,
    user: User,
    *,
    revoke_api_keys: bool,
    except_session_id: str | None = None,
) -> int:
    """End every session of `user` (but `except_session_id`); with `revoke_api_keys`, revoke
    every API key too — a password reset alone leaves keys working. Returns keys revoked."""
    await sessions.revoke_all_for_user(db, user.id, except_session_id=except_session_id)
    if not revoke_api_keys:
        return 0
    return await key_service.revoke_all_for_user(db, user.id)


async def admin_delete(db: AsyncSession, actor: User, target: User) -> None:
    await _guard_admin_change(db, actor, target, "delete")
    await db.execute(delete(Agent).where(Agent.owner_id == target.id))  # their private agents
    await db.delete(target)
    await db.flush()
    announce(db, "credentials")


def generate_password() -> str:
    return secrets.token_urlsafe(15)


async def turn_off_two_factor(db: AsyncSession, user: User) -> None:
    """Two-factor sign-in off: secret and recovery codes gone (the user's choice, or an admin's)."""
    user.totp_secret_encrypted = None
    user.totp_enabled_at = None
    user.totp_last_step = None
    await db.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    await db.flush()
