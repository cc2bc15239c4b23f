from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, UTCDateTime, utcnow


class BalanceEntry(Base):
    """One change to a user's prepaid balance other than a call's cost: who added (or took)
    what, when, and why. Append-only: the balance's audit trail."""

    __tablename__ = "balance_entries"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    amount_nano: Mapped[int] = mapped_column(BigInteger)  # negative: taken away
    kind: Mapped[str] = mapped_column(String(16))  # topup | code | adjust
    note: Mapped[str] = mapped_column(String(255), default="")
    # No foreign keys: the trail outlives the admin account and the code.
    created_by_id: Mapped[int | None] = mapped_column(Integer)
    code_id: Mapped[int | None] = mapped_column(Integer)
    balance_after_nano: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)


class RedemptionCode(Base):
    """A one-time code worth `amount_nano` on a user's balance. Only its SHA-256 is kept; the
    code itself is shown once, when the batch is made."""

    __tablename__ = "redemption_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    hint: Mapped[str] = mapped_column(String(8))  # the code's last characters, to tell them apart
    amount_nano: Mapped[int] = mapped_column(BigInteger)
    batch: Mapped[str] = mapped_column(String(64), index=True)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_by_id: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    redeemed_by_id: Mapped[int | None] = mapped_column(Integer)
    redeemed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class SpendAlert(Base):
    """A near-the-limit mail sent (80 or 100 percent of a budget or a balance), so that each is
    sent once per subject and period."""

    __tablename__ = "spend_alerts"
    __table_args__ = (UniqueConstraint("subject", "period", "level"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    subject: Mapped[str] = mapped_column(String(32))  # user:5, key:9, balance:5
    period: Mapped[str] = mapped_column(String(16))  # 2026-12-05, 2026-W49, 2026-12, total
    level: Mapped[int] = mapped_column(Integer)
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
