from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import JSON, Boolean, Enum, Float, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, UTCDateTime, utcnow


class ChannelStatus(enum.StrEnum):
    ENABLED = "enabled"
    DISABLED = "disabled"  # by an admin
    AUTO_DISABLED = "auto_disabled"  # by the gateway (bad key, quota, undecryptable key)


class Channel(Base):
    """An upstream provider endpoint (OpenAI-compatible) with its key, models and limits."""

    __tablename__ = "channels"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    type: Mapped[str] = mapped_column(String(32), default="openai")
    # The OpenAI base URL, including the version path: https://api.openai.com/v1
    base_url: Mapped[str] = mapped_column(String(512))
    # Azure OpenAI: with a version, calls go to deployment URLs (…/openai/deployments/<model>/…
    # ?api-version=…); without, the base URL is used as OpenAI's (Azure's /openai/v1).
    api_version: Mapped[str | None] = mapped_column(String(32))
    # The upstream serves OpenAI's Responses API: `/v1/responses` is passed through, not translated.
    responses_api: Mapped[bool] = mapped_column(Boolean, default=False)
    # Fernet token (MultiFernet, see core.security.SecretBox). Never returned by any API.
    api_key_encrypted: Mapped[str] = mapped_column(Text)
    # `sk-…abcd`, computed when the key is saved, so lists need no decryption.
    api_key_hint: Mapped[str] = mapped_column(String(32))
    models: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Public model name -> upstream model name.
    model_mapping: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    priority: Mapped[int] = mapped_column(Integer, default=0)
    weight: Mapped[int] = mapped_column(Integer, default=1)
    rpm_limit: Mapped[int | None] = mapped_column(Integer)
    connect_timeout: Mapped[float] = mapped_column(Float)
    first_byte_timeout: Mapped[float] = mapped_column(Float)
    idle_timeout: Mapped[float] = mapped_column(Float)
    total_timeout: Mapped[float] = mapped_column(Float)
    status: Mapped[ChannelStatus] = mapped_column(
        Enum(
            ChannelStatus,
            name="channel_status",
            native_enum=False,
            create_constraint=True,
            length=16,
            values_callable=lambda members: [m.value for m in members],
        ),
        default=ChannelStatus.ENABLED,
    )
    # Why the status is what it is: admin, auth_failed, quota_exceeded, key_undecryptable.
    status_reason: Mapped[str | None] = mapped_column(String(32))
    status_detail: Mapped[str | None] = mapped_column(Text)
    status_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    split_think: Mapped[bool] = mapped_column(Boolean, default=False)
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    notes: Mapped[str | None] = mapped_column(Text)
    last_test_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_test_ok: Mapped[bool | None] = mapped_column(Boolean)
    last_test_latency_ms: Mapped[int | None] = mapped_column(Integer)
    last_test_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
