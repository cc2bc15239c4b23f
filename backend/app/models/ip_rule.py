from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, UTCDateTime, utcnow


class IPRule(Base):
    """A blocked client address or CIDR range (IPv4 or IPv6)."""

    __tablename__ = "ip_rules"
    __table_args__ = (UniqueConstraint("cidr"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # Canonical network text: "203.0.113.0/24", "2001:db8::/32", "198.51.100.7/32".
    cidr: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(255), default="")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    # No foreign key: a rule outlives the admin account that made it.
    created_by_id: Mapped[int | None] = mapped_column(Integer)
    created_by: Mapped[str | None] = mapped_column(String(32))


class BlockedAttempt(Base):
    """Requests refused by the blacklist, aggregated per (client address, rule).

    One row per pair however many requests arrive, so a flood cannot fill the disk; `ip` is the rule's
    own range when one rule sees too many distinct addresses in one flush.
    """

    __tablename__ = "blocked_attempts"
    __table_args__ = (UniqueConstraint("ip", "rule_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    ip: Mapped[str] = mapped_column(String(64))
    # No foreign key: the record stays when the rule is deleted.
    rule_id: Mapped[int] = mapped_column(Integer, index=True)
    rule_cidr: Mapped[str] = mapped_column(String(64))
    count: Mapped[int] = mapped_column(Integer, default=0)
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    last_path: Mapped[str] = mapped_column(String(255), default="")
    last_user_agent: Mapped[str] = mapped_column(String(255), default="")
