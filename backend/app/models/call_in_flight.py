from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, UTCDateTime, utcnow


class CallInFlight(Base):
    """A model call still running, recorded while it runs so a crash leaves a trace.

    Written by the call-log writer shortly after a call starts (a call that ends before that is
    never written here) and removed in the transaction that writes its call-log row. If its server
    dies, the next one turns it into a call-log row ended `interrupted` — and a chat reply into its
    assistant message with the text it had (`reply`, checkpointed every few seconds).
    """

    __tablename__ = "calls_in_flight"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    instance_id: Mapped[str] = mapped_column(String(32), index=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # The call-log row as it stood when last written (what is known so far).
    row: Mapped[dict[str, Any]] = mapped_column(JSON)
    # A chat reply's partial assistant message: conversation, model, text and reasoning so far.
    reply: Mapped[dict[str, Any] | None] = mapped_column(JSON)
