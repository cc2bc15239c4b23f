from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, UTCDateTime, utcnow


class ApiKey(Base):
    """A key an OpenAI-compatible client sends as `Authorization: Bearer sk-…`.

    Only the SHA-256 of the key is stored; the key itself is shown once, when it is created.
    """

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    last4: Mapped[str] = mapped_column(String(4))
    # None: every model the user may use. A list: only these public model names.
    models: Mapped[list[str] | None] = mapped_column(JSON)
    # Limits of this key alone, on top of its owner's (None: none).
    rpm_limit: Mapped[int | None] = mapped_column(Integer)
    concurrent_streams_limit: Mapped[int | None] = mapped_column(Integer)
    # Spend cap of this key in nano-units per `budget_period`; None: no budget of its own.
    budget_nano: Mapped[int | None] = mapped_column(BigInteger)
    budget_period: Mapped[str | None] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
