"""The first admin: from ADMIN_USERNAME / ADMIN_PASSWORD, or with a generated password shown once.

Exactly one is created even when several processes start at the same moment: creation happens in the
same transaction as inserting the `first_admin` row of `app_meta`, whose key is unique, so every
process but one fails that insert, rolls back and creates nothing.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import TextIO

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.app_secrets import ConfigError
from app.core.config import AdminSettings
from app.core.security import PasswordHasher
from app.models import AppMeta, User, UserRole
from app.users.fields import PASSWORD_MIN_CHARS, check_username, username_key
from app.users.service import generate_password

FIRST_ADMIN_MARK = "first_admin"


@dataclass(frozen=True)
class FirstAdmin:
    username: str
    generated_password: str | None


def _admin_username(settings: AdminSettings) -> str:
    try:
        return check_username(settings.username)
    except ValueError as exc:
        raise ConfigError(f"ADMIN_USERNAME is not a valid username: {exc}") from None


def _admin_password(settings: AdminSettings) -> tuple[str, bool]:
    if settings.password is None:
        return generate_password(), True
    password = settings.password.get_secret_value()
    if len(password) < PASSWORD_MIN_CHARS or not password.strip():
        raise ConfigError(f"ADMIN_PASSWORD must be at least {PASSWORD_MIN_CHARS} characters")
    return password, False


def check_settings(settings: AdminSettings) -> None:
    """Fail at start, with a clear message, on an unusable ADMIN_USERNAME or ADMIN_PASSWORD."""
    _admin_username(settings)
    if settings.password is not None:
        _admin_password(settings)


async def ensure_first_admin(
    sessionmaker: async_sessionmaker[AsyncSession],
    hasher: PasswordHasher,
    settings: AdminSettings,
) -> FirstAdmin | None:
    """Create the first admin if this installation has never had one. None: nothing was created."""
    username = _admin_username(settings)
    async with sessionmaker() as db:
        if await db.get(AppMeta, FIRST_ADMIN_MARK) is not None:
            return None
    password, generated = _admin_password(settings)
    password_hash = await hasher.hash(password)
    async with sessionmaker() as db:
        try:
            db.add(AppMeta(key=FIRST_ADMIN_MARK, value=username))
            await db.flush()
            existing_admin = await db.scalar(select(User.id).where(User.role == UserRole.ADMIN))
            if existing_admin is not None:
                await db.commit()
                return None
            clash = await db.scalar(select(User).where(User.username_key == username_key(username)))
            if clash is not None:
                raise ConfigError(
                    f"ADMIN_USERNAME '{username}' is taken by an existing non-admin account; "
                    "choose another name"
                )
            db.add(
                User(
                    username=username,
                    username_key=username_key(username),
                    email=settings.email.lower() if settings.email else None,
                    password_hash=password_hash,
                    role=UserRole.ADMIN,
                )
            )
            await db.commit()
        except (IntegrityError, OperationalError):
            # Another process claimed the mark first (SQLite may report the lost race as a lock).
            await db.rollback()
            async with sessionmaker() as check:
                if await check.get(AppMeta, FIRST_ADMIN_MARK) is not None:
                    return None
            raise
    return FirstAdmin(username=username, generated_password=password if generated else None)


def announce(admin: FirstAdmin, stream: TextIO | None = None) -> None:
    """Print the first admin's credentials. The only time a generated password is ever shown."""
    lines = ["", "=" * 64, f"  First admin account created: {admin.username}"]
    if admin.generated_password:
        lines += [
            f"  Generated password:          {admin.generated_password}",
            "  It is shown only this once. Sign in and change it, or set",
            "  ADMIN_PASSWORD before the first start next time.",
        ]
    else:
        lines.append("  Password: the ADMIN_PASSWORD you configured.")
    lines += ["=" * 64, ""]
    print("\n".join(lines), file=stream or sys.stdout, flush=True)
