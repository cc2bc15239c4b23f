"""Two-factor sign-in with time-based one-time codes (TOTP, RFC 6238) and recovery codes.

Enrolling: `begin` stores a new secret (encrypted like channel keys) and hands back its QR code;
`confirm` switches two-factor sign-in on once the user proves their app shows the right code, and
returns ten recovery codes — shown this once, stored as SHA-256. Codes from the step before and
after the current one are accepted (clocks drift); each step is good once: the last step used is
stored, and moving it forward is one conditional UPDATE, so the same code cannot sign in twice,
not even twice at the same moment. A recovery code works once, in place of a code.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

import pyotp
import segno
from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.throttle import LoginThrottle
from app.core.errors import ConflictError, UnprocessableError
from app.core.security import SecretBox, UndecryptableError
from app.models import RecoveryCode, User
from app.models.base import utcnow
from app.users import service as user_service

RECOVERY_CODES = 10
RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i
RECOVERY_GROUPS = 3  # xxxx-xxxx-xxxx: 12 characters, about 59 bits
STEP_SECONDS = 30
DRIFT_STEPS = 1


@dataclass(frozen=True)
class Enrolment:
    secret: str
    otpauth_uri: str
    qr_svg_data_uri: str


def invalid_code(param: str = "code") -> UnprocessableError:
    return UnprocessableError("The code is not right", code="invalid_code", param=param)


def _normal_code(code: str) -> str:
    return "".join(code.split())


def _recovery_digest(code: str) -> str:
    normal = "".join(ch for ch in code.lower() if ch.isalnum())
    return hashlib.sha256(normal.encode()).hexdigest()


def new_recovery_codes() -> list[str]:
    return [
        "-".join(
            "".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(4))
            for _ in range(RECOVERY_GROUPS)
        )
        for _ in range(RECOVERY_CODES)
    ]


def _secret(box: SecretBox, user: User) -> str:
    if user.totp_secret_encrypted is None:
        raise ConflictError("Two-factor sign-in is not set up", code="two_factor_not_set_up")
    try:
        return box.decrypt(user.totp_secret_encrypted)
    except UndecryptableError:
        raise ConflictError(
            "The two-factor secret cannot be decrypted with this server's keys; use a recovery "
            "code, or ask an administrator to reset two-factor sign-in",
            code="two_factor_unavailable",
        ) from None


def matching_step(secret: str, code: str, now: float | None = None) -> int | None:
    """The time step whose code this is (current ± drift), or None."""
    code = _normal_code(code)
    if len(code) != 6 or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret, interval=STEP_SECONDS)
    current = int((time.time() if now is None else now) // STEP_SECONDS)
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


async def _claim_step(db: AsyncSession, user: User, step: int) -> bool:
    """Record `step` as used, only if it is later than every step used before."""
    result = await db.execute(
        update(User)
        .where(
            User.id == user.id,
            or_(User.totp_last_step.is_(None), User.totp_last_step < step),
        )
        .values(totp_last_step=step)
        .execution_options(synchronize_session=False)
    )
    if getattr(result, "rowcount", 0) != 1:
        return False
    user.totp_last_step = step
    return True


async def _use_recovery_code(db: AsyncSession, user: User, code: str) -> bool:
    result = await db.execute(
        update(RecoveryCode)
        .where(
            RecoveryCode.user_id == user.id,
            RecoveryCode.code_hash == _recovery_digest(code),
            RecoveryCode.used_at.is_(None),
        )
        .values(used_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return getattr(result, "rowcount", 0) == 1


async def check(
    db: AsyncSession, box: SecretBox, user: User, *, code: str | None, recovery_code: str | None
) -> bool:
    """A second factor for a sign-in or a change: a fresh code, or an unused recovery code."""
    if recovery_code:
        return await _use_recovery_code(db, user, recovery_code)
    if not code:
        return False
    step = matching_step(_secret(box, user), code)
    return step is not None and await _claim_step(db, user, step)


async def verify(
    db: AsyncSession,
    box: SecretBox,
    throttle: LoginThrottle,
    user: User,
    client_ip: str,
    *,
    code: str | None,
    recovery_code: str | None,
) -> bool:
    """`check`, counted as an attempt before the code is compared (429 once too many failed)."""
    await throttle.attempt(user.username_key, client_ip, "second_factor")
    if not await check(db, box, user, code=code, recovery_code=recovery_code):
        return False
    await throttle.succeeded(user.username_key, client_ip, "second_factor")
    return True


async def begin(db: AsyncSession, box: SecretBox, user: User, issuer: str) -> Enrolment:
    """A new secret, kept until it is confirmed (asking again replaces it)."""
    if user.two_factor_enabled:
        raise ConflictError("Two-factor sign-in is already on", code="two_factor_enabled")
    secret = pyotp.random_base32()
    user.totp_secret_encrypted = box.encrypt(secret)
    user.totp_last_step = None
    await db.flush()
    uri = pyotp.TOTP(secret, interval=STEP_SECONDS).provisioning_uri(
        name=user.email or user.username, issuer_name=issuer
    )
    qr = segno.make(uri, error="m").svg_data_uri(scale=5, border=2)
    return Enrolment(secret=secret, otpauth_uri=uri, qr_svg_data_uri=qr)


async def _store_recovery_codes(db: AsyncSession, user: User) -> list[str]:
    codes = new_recovery_codes()
    await db.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    db.add_all(RecoveryCode(user_id=user.id, code_hash=_recovery_digest(c)) for c in codes)
    await db.flush()
    return codes


async def confirm(
    db: AsyncSession, box: SecretBox, throttle: LoginThrottle, user: User, code: str, client_ip: str
) -> list[str]:
    """Switch two-factor sign-in on with a code from the app; the new recovery codes."""
    if user.two_factor_enabled:
        raise ConflictError("Two-factor sign-in is already on", code="two_factor_enabled")
    await throttle.attempt(user.username_key, client_ip, "second_factor")
    step = matching_step(_secret(box, user), code)
    if step is None or not await _claim_step(db, user, step):
        raise invalid_code()
    await throttle.succeeded(user.username_key, client_ip, "second_factor")
    user.totp_enabled_at = utcnow()
    return await _store_recovery_codes(db, user)


async def regenerate_recovery_codes(
    db: AsyncSession, box: SecretBox, throttle: LoginThrottle, user: User, code: str, client_ip: str
) -> list[str]:
    """New recovery codes (the old ones stop working), after a fresh code."""
    if not user.two_factor_enabled:
        raise ConflictError("Two-factor sign-in is not on", code="two_factor_not_set_up")
    if not await verify(db, box, throttle, user, client_ip, code=code, recovery_code=None):
        raise invalid_code()
    return await _store_recovery_codes(db, user)


async def remaining_recovery_codes(db: AsyncSession, user: User) -> int:
    return int(
        await db.scalar(
            select(func.count())
            .select_from(RecoveryCode)
            .where(RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None))
        )
        or 0
    )


async def turn_off_with_proof(
    db: AsyncSession,
    box: SecretBox,
    throttle: LoginThrottle,
    user: User,
    client_ip: str,
    *,
    code: str | None,
    recovery_code: str | None,
) -> None:
    """The user turns it off: a code or a recovery code is needed (the password is checked
    first, by the caller). Already off: nothing to do."""
    if not user.two_factor_enabled:
        return
    if not await verify(db, box, throttle, user, client_ip, code=code, recovery_code=recovery_code):
        raise invalid_code("recovery_code" if recovery_code else "code")
    await user_service.turn_off_two_factor(db, user)
