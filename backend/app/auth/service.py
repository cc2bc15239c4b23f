"""Sign-up, sign-in, token refresh and sign-out.

Access tokens are short-lived JWTs naming a session (`sid`); every request checks that the session
is live and the user active, so logout, password changes and disabling an account take effect on the
next request. Refresh tokens rotate on every use; presenting an already-used one revokes the whole
session (it was copied).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.access import sessions
from app.access.principal import Principal, invalid_token
from app.auth import two_factor
from app.auth.throttle import LoginThrottle
from app.billing.budgets import Budget
from app.core.errors import (
    ForbiddenError,
    NotFoundError,
    UnauthorizedError,
    UnprocessableError,
)
from app.core.security import InvalidTokenError, PasswordHasher, SecretBox, TokenCodec, new_id
from app.models import AuthSession, SpentChallenge, User
from app.models.base import utcnow
from app.users import service as user_service
from app.users.fields import username_key


@dataclass(frozen=True)
class IssuedTokens:
    access_token: str
    refresh_token: str
    expires_in: int
    user: User


@dataclass(frozen=True)
class TwoFactorChallenge:
    """The password was right; a code (or a recovery code) is needed to finish signing in."""

    token: str
    expires_in: int


async def _start_session(
    db: AsyncSession,
    tokens: TokenCodec,
    user: User,
    client_ip: str | None,
    user_agent: str | None,
) -> IssuedTokens:
    refresh_jti = new_id()
    row = await sessions.create(
        db,
        user_id=user.id,
        refresh_jti=refresh_jti,
        expires_at=utcnow() + tokens.ttl("refresh"),
        client_ip=client_ip,
        user_agent=user_agent,
    )
    return _issue(tokens, user, row.id, refresh_jti)


def _issue(
    tokens: TokenCodec,
    user: User,
    session_id: str,
    refresh_jti: str,
    issued_at: datetime | None = None,
) -> IssuedTokens:
    """The token pair for a session's current refresh token id. Deterministic given `issued_at`
    (the access token's id is derived from the refresh token's), so the pair a refresh gave can be
    given again, the same, to a concurrent refresh in the grace window."""
    issued_at = issued_at or utcnow()
    access_jti = hashlib.sha256(f"access:{refresh_jti}".encode()).hexdigest()[:32]
    access, _ = tokens.issue("access", user.id, session_id, jti=access_jti, issued_at=issued_at)
    refresh, _ = tokens.issue("refresh", user.id, session_id, jti=refresh_jti, issued_at=issued_at)
    return IssuedTokens(
        access_token=access,
        refresh_token=refresh,
        expires_in=int(tokens.ttl("access").total_seconds()),
        user=user,
    )


async def register(
    db: AsyncSession,
    hasher: PasswordHasher,
    *,
    username: str,
    password: str,
    email: str | None,
    display_name: str | None,
    budget: Budget | None = None,
) -> User:
    return await user_service.create(
        db,
        hasher,
        username=username,
        password=password,
        email=email,
        display_name=display_name,
        budget=budget,
    )


async def login(
    db: AsyncSession,
    hasher: PasswordHasher,
    tokens: TokenCodec,
    throttle: LoginThrottle,
    *,
    identifier: str,
    password: str,
    client_ip: str,
    user_agent: str | None,
    require_admin: bool = False,
) -> IssuedTokens | TwoFactorChallenge:
    account = identifier.strip().lower() if "@" in identifier else username_key(identifier.strip())
    await throttle.attempt(account, client_ip)
    user = await user_service.find_for_login(db, identifier)
    # Unknown accounts are verified against a dummy hash: same work, same answer, same time.
    ok, new_hash = await hasher.verify(password, user.password_hash if user else None)
    if user is None or not ok:
        raise UnauthorizedError("Invalid username or password", code="invalid_credentials")
    await throttle.succeeded(account, client_ip)
    if new_hash is not None:
        user.password_hash = new_hash
    if not user.is_active:
        raise ForbiddenError("This account is disabled", code="account_disabled", commit=True)
    if require_admin and not user.is_admin:
        raise ForbiddenError("This account is not an administrator", code="not_admin", commit=True)
    if user.two_factor_enabled:
        token, _ = tokens.issue("two_factor", user.id, new_id())
        return TwoFactorChallenge(
            token=token, expires_in=int(tokens.ttl("two_factor").total_seconds())
        )
    user.last_login_at = utcnow()
    return await _start_session(db, tokens, user, client_ip, user_agent)


async def login_second_factor(
    db: AsyncSession,
    tokens: TokenCodec,
    box: SecretBox,
    throttle: LoginThrottle,
    *,
    challenge: str,
    code: str | None,
    recovery_code: str | None,
    client_ip: str,
    user_agent: str | None,
) -> IssuedTokens:
    """Finish a sign-in that asked for a second factor. Wrong codes count as failed sign-ins."""
    expired = UnauthorizedError(
        "This sign-in has expired; enter your password again", code="challenge_expired"
    )
    try:
        claims = tokens.decode(challenge, "two_factor")
    except InvalidTokenError:
        raise expired from None
    user = await db.get(User, claims.user_id)
    if user is None or not user.is_active or not user.two_factor_enabled:
        raise expired
    if await _challenge_spent(db, claims.jti):
        raise expired
    if not await two_factor.verify(
        db, box, throttle, user, client_ip, code=code, recovery_code=recovery_code
    ):
        raise UnauthorizedError("The code is not right", code="invalid_code")
    if not await _spend_challenge(db, user, claims.jti, claims.expires_at):
        raise expired  # another request signed in with this challenge first
    user.last_login_at = utcnow()
    return await _start_session(db, tokens, user, client_ip, user_agent)


async def _challenge_spent(db: AsyncSession, jti: str) -> bool:
    return await db.get(SpentChallenge, jti) is not None


async def _spend_challenge(db: AsyncSession, user: User, jti: str, expires_at: datetime) -> bool:
    """Mark a challenge used (False if it already was); expired marks are cleared on the way."""
    await db.execute(delete(SpentChallenge).where(SpentChallenge.expires_at < utcnow()))
    try:
        async with db.begin_nested():
            db.add(SpentChallenge(jti=jti, user_id=user.id, expires_at=expires_at))
    except IntegrityError:
        return False
    return True


async def refresh(db: AsyncSession, tokens: TokenCodec, refresh_token: str) -> IssuedTokens:
    try:
        claims = tokens.decode(refresh_token, "refresh")
    except InvalidTokenError:
        raise invalid_token() from None
    found = await sessions.get_live_with_user(db, claims.session_id, claims.user_id)
    if found is None:
        raise invalid_token()
    session_row, user = found
    if not user.is_active:
        raise invalid_token()
    if session_row.refresh_jti != claims.jti:
        again = _within_grace(tokens, session_row, claims.jti)
        if again is not None:
            return _issue(tokens, user, session_row.id, session_row.refresh_jti, again)
        # An old refresh token came back: someone holds a copy. End the session for everyone.
        await sessions.revoke(db, session_row.id)
        raise invalid_token(commit=True)
    new_jti, now = new_id(), utcnow()
    if not await sessions.rotate_refresh(
        db, session_row.id, claims.jti, new_jti, now, now + tokens.ttl("refresh")
    ):
        # A concurrent refresh with the same token rotated it first: give what it got.
        await db.refresh(session_row)
        again = _within_grace(tokens, session_row, claims.jti)
        if again is None:
            raise invalid_token()
        return _issue(tokens, user, session_row.id, session_row.refresh_jti, again)
    return _issue(tokens, user, session_row.id, new_jti, now)


def _within_grace(tokens: TokenCodec, row: AuthSession, jti: str) -> datetime | None:
    """When `jti` was replaced, if that was this session's last rotation and it happened within
    the grace window (two tabs refreshing at once); else None."""
    if row.previous_refresh_jti != jti or row.rotated_at is None or row.revoked_at is not None:
        return None
    if utcnow() - row.rotated_at > tokens.refresh_grace:
        return None
    return row.rotated_at


async def logout(db: AsyncSession, principal: Principal) -> None:
    await sessions.revoke(db, principal.session_id)


async def change_password(
    db: AsyncSession,
    hasher: PasswordHasher,
    throttle: LoginThrottle,
    principal: Principal,
    *,
    current_password: str,
    new_password: str,
    client_ip: str,
    revoke_api_keys: bool = False,
) -> int:
    """Change the password and sign out every other session (this one stays); with
    `revoke_api_keys`, revoke the API keys too. Returns how many keys were revoked."""
    user = principal.user
    await confirm_password(
        hasher, throttle, user, current_password, client_ip, param="current_password"
    )
    if current_password == new_password:
        raise UnprocessableError(
            "New password must differ from the current one",
            code="same_password",
            param="new_password",
        )
    await user_service.set_password(db, hasher, user, new_password)
    return await user_service.sign_out_everywhere(
        db, user, revoke_api_keys=revoke_api_keys, except_session_id=principal.session_id
    )


async def confirm_password(
    hasher: PasswordHasher,
    throttle: LoginThrottle,
    user: User,
    password: str,
    client_ip: str,
    *,
    param: str = "password",
) -> None:
    """The signed-in user's password again, before a sensitive change (422 if wrong; wrong
    answers count as failed sign-ins)."""
    account = user.username_key
    await throttle.attempt(account, client_ip)
    ok, _ = await hasher.verify(password, user.password_hash)
    if not ok:
        raise UnprocessableError(
            "Current password is incorrect", code="wrong_password", param=param
        )
    await throttle.succeeded(account, client_ip)


async def list_sessions(db: AsyncSession, principal: Principal) -> list[AuthSession]:
    return await sessions.list_live(db, principal.user.id)


async def revoke_own_session(db: AsyncSession, principal: Principal, session_id: str) -> None:
    live = {row.id for row in await sessions.list_live(db, principal.user.id)}
    if session_id not in live:
        raise NotFoundError("Session not found")
    await sessions.revoke(db, session_id)
