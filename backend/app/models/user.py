from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import BigInteger, Enum, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, UTCDateTime, utcnow


class UserRole(enum.StrEnum):
    USER = "user"
    ADMIN = "admin"


class UserStatus(enum.StrEnum):
    ACTIVE = "active"
    DISABLED = "disabled"


def _str_enum(enum_cls: type[enum.StrEnum], name: str) -> Enum:
    return Enum(
        enum_cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=16,
        values_callable=lambda members: [m.value for m in members],
    )


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(32))
    # NFKC + casefold of the username: "Alice" and "ａｌｉｃｅ" are the same account.
    username_key: Mapped[str] = mapped_column(String(64), unique=True)
    email: Mapped[str | None] = mapped_column(String(254), unique=True)
    display_name: Mapped[str | None] = mapped_column(String(64))
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[UserRole] = mapped_column(_str_enum(UserRole, "user_role"), default=UserRole.USER)
    status: Mapped[UserStatus] = mapped_column(
        _str_enum(UserStatus, "user_status"), default=UserStatus.ACTIVE
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    password_changed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # When the current e-mail address was confirmed through a mailed link (None: not confirmed;
    # changing the address clears it).
    email_verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # SHA-256 (hex) of the avatar image in `user_avatars`, part of its URL (None: no avatar).
    avatar_hash: Mapped[str | None] = mapped_column(String(64))
    # Two-factor sign-in: the TOTP secret (Fernet token, like channel keys). Set while enrolling;
    # sign-in asks for a code only once `totp_enabled_at` is set.
    totp_secret_encrypted: Mapped[str | None] = mapped_column(Text)
    totp_enabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The time step of the last code accepted: a code is good once, never again.
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)
    # Per-user overrides of the runtime defaults (None: use the default; 0: no limit).
    rpm_limit: Mapped[int | None] = mapped_column(Integer)
    concurrent_streams_limit: Mapped[int | None] = mapped_column(Integer)
    # Spend cap in nano-units of the site's currency per `budget_period` (day, week, month,
    # total); None: no budget.
    budget_nano: Mapped[int | None] = mapped_column(BigInteger)
    budget_period: Mapped[str | None] = mapped_column(String(8))
    # A prepaid balance in nano-units (top-ups and redeemed codes add, calls take); None: calls
    # are not paid from a balance.
    balance_nano: Mapped[int | None] = mapped_column(BigInteger)

    @property
    def is_admin(self) -> bool:
        return self.role is UserRole.ADMIN

    @property
    def is_active(self) -> bool:
        return self.status is UserStatus.ACTIVE

    @property
    def two_factor_enabled(self) -> bool:
        return self.totp_enabled_at is not None

    @property
    def email_verified(self) -> bool:
        return self.email is not None and self.email_verified_at is not None

    @property
    def avatar_url(self) -> str | None:
        return f"/api/avatars/{self.avatar_hash}.webp" if self.avatar_hash else None
