from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, UTCDateTime, utcnow


class AppMeta(Base):
    """One-off facts about this installation, claimed by inserting a row (the key is unique).

    Used so that work that must happen once (creating the first admin) happens exactly once even when
    several processes start at the same moment: the second insert fails and that process backs off.
    """

    __tablename__ = "app_meta"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
