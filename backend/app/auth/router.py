from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, status
from fastapi.exceptions import RequestValidationError
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import ValidationError

from app.access.dependencies import CurrentPrincipal, CurrentUser
from app.auth import service as auth_service
from app.auth.context import AuthContextDep
from app.auth.dependencies import LoginThrottleDep
from app.auth.schemas import (
    LoginRequest,
    MeUpdate,
    PasswordChange,
    RefreshRequest,
    RegisterRequest,
    SessionRead,
    TokenResponse,
    TwoFactorChallengeResponse,
    TwoFactorLogin,
)
from app.auth.service import IssuedTokens, TwoFactorChallenge
from app.auth.throttle import check_registration
from app.billing.budgets import default_budget
from app.core.deps import ClientIP, SessionDep, UserAgent
from app.core.errors import ForbiddenError, UnauthorizedError
from app.mail.dependencies import MailLanguage
from app.users import service as user_service
from app.users.schemas import UserRead

router = APIRouter(prefix="/api/auth", tags=["auth"])


def _sign_in_response(
    issued: IssuedTokens | TwoFactorChallenge,
) -> TokenResponse | TwoFactorChallengeResponse:
    if isinstance(issued, TwoFactorChallenge):
        return TwoFactorChallengeResponse(
            challenge_token=issued.token, expires_in=issued.expires_in
        )
    return _token_response(issued)


def _token_response(issued: IssuedTokens) -> TokenResponse:
    return TokenResponse(
        access_token=issued.access_token,
        refresh_token=issued.refresh_token,
        expires_in=issued.expires_in,
        user=UserRead.model_validate(issued.user),
    )


@router.post("/register", status_code=status.HTTP_201_CREATED)
async def register(
    body: RegisterRequest,
    ctx: AuthContextDep,
    db: SessionDep,
    client_ip: ClientIP,
    language: MailLanguage,
) -> UserRead:
    """Create an account. With `email_verification` on, a confirmation link is mailed."""
    values = ctx.runtime.current
    if not values.registration_enabled:
        raise ForbiddenError(
            "Registration is closed on this site. Ask an administrator for an account.",
            code="registration_closed",
        )
    await check_registration(ctx.limiter, values, client_ip)
    user = await auth_service.register(
        db,
        ctx.hasher,
        username=body.username,
        password=body.password.get_secret_value(),
        email=body.email,
        display_name=body.display_name,
        budget=default_budget(values.default_user_budget, values.default_user_budget_period),
    )
    message = await ctx.account_mail.offer_verification(db, user, language, client_ip)
    if message is not None:
        await ctx.account_mail.send(db, message, "verify_email")
    return UserRead.model_validate(user)


async def _login(
    ctx: AuthContextDep,
    db: SessionDep,
    throttle: LoginThrottleDep,
    client_ip: str,
    user_agent: str | None,
    username: str,
    password: str,
    *,
    require_admin: bool = False,
) -> TokenResponse | TwoFactorChallengeResponse:
    issued = await auth_service.login(
        db,
        ctx.hasher,
        ctx.tokens,
        throttle,
        identifier=username,
        password=password,
        client_ip=client_ip,
        user_agent=user_agent,
        require_admin=require_admin,
    )
    return _sign_in_response(issued)


@router.post("/login")
async def login(
    body: LoginRequest,
    ctx: AuthContextDep,
    db: SessionDep,
    throttle: LoginThrottleDep,
    client_ip: ClientIP,
    user_agent: UserAgent,
) -> TokenResponse | TwoFactorChallengeResponse:
    """Sign in. With two-factor sign-in on, the answer is a challenge for `/login/2fa`."""
    return await _login(
        ctx, db, throttle, client_ip, user_agent, body.username, body.password.get_secret_value()
    )


@router.post("/admin/login")
async def admin_login(
    body: LoginRequest,
    ctx: AuthContextDep,
    db: SessionDep,
    throttle: LoginThrottleDep,
    client_ip: ClientIP,
    user_agent: UserAgent,
) -> TokenResponse | TwoFactorChallengeResponse:
    """Sign in like `POST /api/auth/login`, but only as an admin (others get 403)."""
    return await _login(
        ctx,
        db,
        throttle,
        client_ip,
        user_agent,
        body.username,
        body.password.get_secret_value(),
        require_admin=True,
    )


@router.post("/login/2fa")
async def login_second_factor(
    body: TwoFactorLogin,
    ctx: AuthContextDep,
    db: SessionDep,
    throttle: LoginThrottleDep,
    client_ip: ClientIP,
    user_agent: UserAgent,
) -> TokenResponse:
    """Finish signing in with a code from the authenticator app or a recovery code."""
    issued = await auth_service.login_second_factor(
        db,
        ctx.tokens,
        ctx.secret_box,
        throttle,
        challenge=body.challenge_token,
        code=body.code,
        recovery_code=body.recovery_code,
        client_ip=client_ip,
        user_agent=user_agent,
    )
    return _token_response(issued)


@router.post("/token", summary="Login (OAuth2 password form, used by Swagger's Authorize)")
async def login_form(
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    ctx: AuthContextDep,
    db: SessionDep,
    throttle: LoginThrottleDep,
    client_ip: ClientIP,
    user_agent: UserAgent,
) -> TokenResponse:
    """Sign in with an OAuth2 password form (what Swagger's **Authorize** button sends); answers the
    token pair."""
    try:
        body = LoginRequest.model_validate({"username": form.username, "password": form.password})
    except ValidationError as exc:
        raise RequestValidationError(exc.errors()) from None
    signed_in = await _login(
        ctx, db, throttle, client_ip, user_agent, body.username, body.password.get_secret_value()
    )
    if not isinstance(signed_in, TokenResponse):
        raise UnauthorizedError(
            "This account signs in with a second factor: use /api/auth/login and /api/auth/login/2fa",
            code="two_factor_required",
        )
    return signed_in


@router.post("/refresh")
async def refresh(body: RefreshRequest, ctx: AuthContextDep, db: SessionDep) -> TokenResponse:
    """New token pair; the old refresh token stops working."""
    return _token_response(await auth_service.refresh(db, ctx.tokens, body.refresh_token))


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
async def logout(principal: CurrentPrincipal, db: SessionDep) -> None:
    """Ends this session (its access and refresh tokens)."""
    await auth_service.logout(db, principal)


@router.get("/me")
async def read_me(user: CurrentUser) -> UserRead:
    """Your profile (`email`, `display_name`)."""
    return UserRead.model_validate(user)


@router.patch("/me")
async def update_me(
    body: MeUpdate,
    user: CurrentUser,
    ctx: AuthContextDep,
    db: SessionDep,
    client_ip: ClientIP,
    language: MailLanguage,
) -> UserRead:
    """A new e-mail address is unconfirmed; with `email_verification` on, a link is mailed."""
    changes = body.model_dump(exclude_unset=True)
    updated = await user_service.update_profile(db, user, changes)
    if "email" in changes:
        message = await ctx.account_mail.offer_verification(db, updated, language, client_ip)
        if message is not None:
            await ctx.account_mail.send(db, message, "verify_email")
    return UserRead.model_validate(updated)


@router.post("/me/password", status_code=status.HTTP_204_NO_CONTENT)
async def change_password(
    body: PasswordChange,
    principal: CurrentPrincipal,
    ctx: AuthContextDep,
    db: SessionDep,
    throttle: LoginThrottleDep,
    client_ip: ClientIP,
) -> None:
    """Change password; signs out your other sessions (and revokes your API keys if asked)."""
    await auth_service.change_password(
        db,
        ctx.hasher,
        throttle,
        principal,
        current_password=body.current_password.get_secret_value(),
        new_password=body.new_password.get_secret_value(),
        client_ip=client_ip,
        revoke_api_keys=body.revoke_api_keys,
    )


@router.get("/sessions")
async def list_sessions(principal: CurrentPrincipal, db: SessionDep) -> list[SessionRead]:
    """Your signed-in devices (sessions), this one marked."""
    rows = await auth_service.list_sessions(db, principal)
    return [
        SessionRead.model_validate(row).model_copy(
            update={"current": row.id == principal.session_id}
        )
        for row in rows
    ]


@router.delete("/sessions/{session_id}", status_code=status.HTTP_204_NO_CONTENT)
async def revoke_session(session_id: str, principal: CurrentPrincipal, db: SessionDep) -> None:
    """Sign one of your devices out (its access and refresh tokens stop working)."""
    await auth_service.revoke_own_session(db, principal, session_id)
