from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, UTCDateTime, utcnow


class UserAvatar(Base):
    """A user's avatar, re-encoded by the server (a small WebP image). Kept in the database so
    that every process behind a load balancer serves it."""

    __tablename__ = "user_avatars"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    # SHA-256 (hex) of `image`: the URL names it, so a new avatar is a new URL. Not unique: two
    # people may upload the same picture (and then share its URL).
    content_hash: Mapped[str] = mapped_column(String(64), index=True)
    image: Mapped[bytes] = mapped_column(LargeBinary)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
