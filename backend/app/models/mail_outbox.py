from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, UTCDateTime, utcnow


class MailOutboxEntry(Base):
    """A mail waiting to be handed to the SMTP server (see app.mail.outbox).

    It is written in the same transaction as what it tells about (the one-time link it carries),
    so neither exists without the other, and it outlives a restart or a crash until it is sent or
    given up. The whole message is stored encrypted like channel keys: it holds a working link.
    """

    __tablename__ = "mail_outbox"

    id: Mapped[int] = mapped_column(primary_key=True)
    # What the mail is for ("verify_email", "reset_password"), for the log.
    purpose: Mapped[str] = mapped_column(String(32))
    # Fernet token of the RFC 5322 message (see core.security.SecretBox).
    message_encrypted: Mapped[str] = mapped_column(Text)
    # Attempts made so far; the next one is due at next_attempt_at.
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    # A process sending it holds it until then; a process that died holding it lets go then.
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
