"""Account recovery and protection under `/api/auth`: confirming the e-mail address, resetting a
forgotten password by mail, and two-factor sign-in."""

from __future__ import annotations

from fastapi import APIRouter, status

from app.access.dependencies import CurrentPrincipal, CurrentUser
from app.auth import password_reset, two_factor, verification
from app.auth.context import AuthContextDep
from app.auth.dependencies import LoginThrottleDep
from app.auth.schemas import (
    Accepted,
    LinkToken,
    PasswordResetConfirm,
    PasswordResetRequest,
    RecoveryCodes,
    TwoFactorBegin,
    TwoFactorCode,
    TwoFactorDisable,
    TwoFactorSetup,
    TwoFactorStatus,
)
from app.auth.service import confirm_password
from app.core.deps import ClientIP, SessionDep
from app.mail.dependencies import MailLanguage
from app.users.schemas import UserRead

router = APIRouter(prefix="/api/auth", tags=["auth"])

RESET_ACCEPTED = (
    "If an account uses this address, a link to choose a new password is on its way. "
    "It works once, for a limited time."
)


@router.post("/send-verification", status_code=status.HTTP_202_ACCEPTED)
async def send_verification(
    user: CurrentUser,
    ctx: AuthContextDep,
    db: SessionDep,
    client_ip: ClientIP,
    language: MailLanguage,
) -> Accepted:
    """Mail a new link to confirm the signed-in user's address (earlier links stop working)."""
    verification.ensure_can_be_sent(user)
    ctx.account_mail.ensure_available()
    assert user.email is not None
    await ctx.account_mail.check_rate(user.email, client_ip)
    message = await ctx.account_mail.verification(db, user, language)
    await ctx.account_mail.send(db, message, "verify_email")
    return Accepted(detail="A confirmation link is on its way")


@router.post("/verify-email")
async def verify_email(body: LinkToken, ctx: AuthContextDep, db: SessionDep) -> UserRead:
    """Use a confirmation link (no sign-in needed: the link may be opened anywhere)."""
    user = await verification.verify_email(db, body.token)
    return UserRead.model_validate(user)


@router.post("/password/reset", status_code=status.HTTP_202_ACCEPTED)
async def request_password_reset(
    body: PasswordResetRequest, ctx: AuthContextDep, client_ip: ClientIP, language: MailLanguage
) -> Accepted:
    """Ask for a reset link. The answer is the same whether or not the address has an account."""
    ctx.account_mail.ensure_available()
    await ctx.account_mail.check_rate(body.email, client_ip)
    ctx.jobs.spawn(ctx.account_mail.send_reset_link(ctx.sessionmaker, body.email, language))
    return Accepted(detail=RESET_ACCEPTED)


@router.post("/password/reset/confirm", status_code=status.HTTP_204_NO_CONTENT)
async def confirm_password_reset(
    body: PasswordResetConfirm, ctx: AuthContextDep, db: SessionDep
) -> None:
    """Choose a new password with a reset link; every session of the account is signed out (and,
    with `revoke_api_keys`, every API key revoked)."""
    await password_reset.confirm(
        db,
        ctx.hasher,
        body.token,
        body.new_password.get_secret_value(),
        revoke_api_keys=body.revoke_api_keys,
    )


@router.get("/2fa")
async def two_factor_status(user: CurrentUser, db: SessionDep) -> TwoFactorStatus:
    """Whether two-factor sign-in is on, and how many recovery codes are left."""
    return TwoFactorStatus(
        enabled=user.two_factor_enabled,
        recovery_codes_left=await two_factor.remaining_recovery_codes(db, user)
        if user.two_factor_enabled
        else 0,
    )


@router.post("/2fa/setup")
async def begin_two_factor(
    body: TwoFactorBegin,
    principal: CurrentPrincipal,
    ctx: AuthContextDep,
    db: SessionDep,
    throttle: LoginThrottleDep,
    client_ip: ClientIP,
) -> TwoFactorSetup:
    """Start enrolling (password needed): a new secret and its QR code, not yet in force."""
    await confirm_password(
        ctx.hasher, throttle, principal.user, body.password.get_secret_value(), client_ip
    )
    enrolment = await two_factor.begin(
        db, ctx.secret_box, principal.user, ctx.runtime.current.site_name
    )
    return TwoFactorSetup(
        secret=enrolment.secret,
        otpauth_uri=enrolment.otpauth_uri,
        qr_svg_data_uri=enrolment.qr_svg_data_uri,
    )


@router.post("/2fa/enable")
async def enable_two_factor(
    body: TwoFactorCode,
    user: CurrentUser,
    ctx: AuthContextDep,
    db: SessionDep,
    throttle: LoginThrottleDep,
    client_ip: ClientIP,
) -> RecoveryCodes:
    """Switch two-factor sign-in on with a code from the app; returns the recovery codes once."""
    codes = await two_factor.confirm(db, ctx.secret_box, throttle, user, body.code, client_ip)
    return RecoveryCodes(codes=codes)


@router.post("/2fa/recovery-codes")
async def new_recovery_codes(
    body: TwoFactorCode,
    user: CurrentUser,
    ctx: AuthContextDep,
    db: SessionDep,
    throttle: LoginThrottleDep,
    client_ip: ClientIP,
) -> RecoveryCodes:
    """Replace the recovery codes (the old ones stop working); needs a fresh code."""
    codes = await two_factor.regenerate_recovery_codes(
        db, ctx.secret_box, throttle, user, body.code, client_ip
    )
    return RecoveryCodes(codes=codes)


@router.post("/2fa/disable", status_code=status.HTTP_204_NO_CONTENT)
async def disable_two_factor(
    body: TwoFactorDisable,
    principal: CurrentPrincipal,
    ctx: AuthContextDep,
    db: SessionDep,
    throttle: LoginThrottleDep,
    client_ip: ClientIP,
) -> None:
    """Switch two-factor sign-in off: the password and a code (or a recovery code) are needed."""
    user = principal.user
    await confirm_password(ctx.hasher, throttle, user, body.password.get_secret_value(), client_ip)
    await two_factor.turn_off_with_proof(
        db,
        ctx.secret_box,
        throttle,
        user,
        client_ip,
        code=body.code,
        recovery_code=body.recovery_code,
    )
