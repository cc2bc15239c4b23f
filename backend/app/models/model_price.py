from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, UTCDateTime, utcnow


class ModelPrice(Base):
    """What a model costs from `effective_from` on, in the site's currency.

    Token prices are micro-units of the currency per million tokens (2.5 USD per 1M tokens is
    2,500,000), the per-call fee micro-units per call: exact integers. `channel_id` set: the price
    of this model when that channel answers (the same model from another provider), instead of
    the model's own. A change is a new row from its time on, so past calls keep their cost; the
    price in force for a call is the newest row whose `effective_from` is not after its start.
    """

    __tablename__ = "model_prices"
    __table_args__ = (Index("ix_model_prices_model_channel", "model", "channel_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    model: Mapped[str] = mapped_column(String(128))
    channel_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("channels.id", ondelete="CASCADE")
    )
    effective_from: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    input_micro: Mapped[int] = mapped_column(BigInteger, default=0)
    # None: cached input costs what input does; reasoning what output does.
    cached_input_micro: Mapped[int | None] = mapped_column(BigInteger)
    output_micro: Mapped[int] = mapped_column(BigInteger, default=0)
    reasoning_micro: Mapped[int | None] = mapped_column(BigInteger)
    call_micro: Mapped[int] = mapped_column(BigInteger, default=0)
    # The most tokens one answer of the model can have: what a call without max_tokens reserves
    # against a budget. None: the runtime setting budget_output_tokens.
    max_output_tokens: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # No foreign key: a price outlives the admin account that set it.
    created_by_id: Mapped[int | None] = mapped_column(Integer)
