from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, Boolean, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, UTCDateTime


class CallLog(Base):
    """Exactly one row per model call (`/v1` or web chat), written by the batched log writer.

    No foreign keys, on purpose: a log is history. Deleting a user, key or channel keeps their
    calls (and their ids) on record, and a row queued just before such a delete still writes.
    """

    __tablename__ = "call_logs"
    # Every list is newest first with keyset pages on (created_at, id). Filters that can be rare
    # (a user, key, model, channel, address, request id) have an index that leads with them, then
    # time; an outcome filter (errors, timeouts) walks the time index — every index also costs each
    # insert, measurably on the hot path.
    __table_args__ = (
        Index("ix_call_logs_created_at_id", "created_at", "id"),
        Index("ix_call_logs_user_id_created_at", "user_id", "created_at"),
        Index("ix_call_logs_requested_model_created_at", "requested_model", "created_at"),
        Index("ix_call_logs_channel_id_created_at", "channel_id", "created_at"),
        Index("ix_call_logs_api_key_id_created_at", "api_key_id", "created_at"),
        Index("ix_call_logs_client_ip_created_at", "client_ip", "created_at"),
        Index("ix_call_logs_request_id", "request_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    request_id: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(16))  # api | chat
    user_id: Mapped[int | None] = mapped_column(Integer)
    api_key_id: Mapped[int | None] = mapped_column(Integer)
    client_ip: Mapped[str | None] = mapped_column(String(45))
    requested_model: Mapped[str] = mapped_column(String(128))
    upstream_model: Mapped[str | None] = mapped_column(String(128))
    channel_id: Mapped[int | None] = mapped_column(Integer)
    channels_tried: Mapped[list[int]] = mapped_column(JSON, default=list)
    stream: Mapped[bool] = mapped_column(Boolean)
    status_code: Mapped[int] = mapped_column(Integer)
    success: Mapped[bool] = mapped_column(Boolean)
    # done | client_gone | upstream_error | timeout | rejected
    end_reason: Mapped[str] = mapped_column(String(16))
    error_message: Mapped[str | None] = mapped_column(Text)
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)
    completion_tokens: Mapped[int] = mapped_column(Integer, default=0)
    reasoning_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cached_tokens: Mapped[int] = mapped_column(Integer, default=0)
    total_tokens: Mapped[int] = mapped_column(Integer, default=0)
    usage_source: Mapped[str] = mapped_column(String(16))  # provider | estimated | none
    # Nano-units (10⁻⁹) of the site's currency, at the prices in force when the call started;
    # None: the model had no price (or the call predates prices), not free.
    cost: Mapped[int | None] = mapped_column(BigInteger)
    ttft_ms: Mapped[int | None] = mapped_column(Integer)
    duration_ms: Mapped[int] = mapped_column(Integer)
