from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, UTCDateTime, utcnow


class MailConfig(Base):
    """Outgoing mail (SMTP), as an admin saved it: one row (id 1). Until it exists, the
    `SMTP_*` environment variables are used."""

    __tablename__ = "mail_config"

    id: Mapped[int] = mapped_column(primary_key=True)
    host: Mapped[str] = mapped_column(String(253), default="")
    port: Mapped[int] = mapped_column(Integer, default=587)
    # "starttls" (upgrade a plain connection), "tls" (TLS from the start), "none".
    security: Mapped[str] = mapped_column(String(16), default="starttls")
    username: Mapped[str] = mapped_column(String(254), default="")
    # Fernet token (see core.security.SecretBox), like channel keys. Never returned by any API.
    password_encrypted: Mapped[str | None] = mapped_column(Text)
    from_address: Mapped[str] = mapped_column(String(254), default="")
    from_name: Mapped[str] = mapped_column(String(64), default="")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    updated_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
