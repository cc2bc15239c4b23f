from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, UTCDateTime


class SpentChallenge(Base):
    """A two-factor sign-in challenge that has been used: a challenge token signs in once.

    Keyed by the token's id (`jti`), written in the same transaction as the session it started,
    so two requests racing with the same challenge cannot both get one. Rows are useless once the
    token has expired and are removed then.
    """

    __tablename__ = "spent_challenges"

    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
