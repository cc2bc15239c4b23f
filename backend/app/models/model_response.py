from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, UTCDateTime, utcnow


class ModelResponse(Base):
    """A stored answer of `/v1/responses` (`store`, the default): what `GET /v1/responses/{id}`
    returns, and the conversation a follow-up with `previous_response_id` continues. Its user's
    only; deleted after `response_retention_days`."""

    __tablename__ = "model_responses"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    user_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    api_key_id: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    model: Mapped[str] = mapped_column(String(256))
    # The conversation so far as Responses items: every input item and this answer's output
    # (a follow-up sends them as they are to a channel speaking the Responses API, translated to
    # chat messages to any other). Responses kept before items were (null here) hold it as chat
    # messages in `messages` instead.
    items: Mapped[list[Any] | None] = mapped_column(JSON)
    messages: Mapped[list[Any]] = mapped_column(JSON)
    # The response object as it was returned.
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
