from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, UTCDateTime, utcnow


class Agent(Base):
    """A chat preset: what a new conversation starts with.

    `system_prompt` and `preset_messages` are the context sent to the model; `greetings` are shown
    to the user as the first assistant bubble and never sent; `suggested_questions` are starters.
    A conversation copies the context when it is created, so editing an agent changes new chats only.
    """

    __tablename__ = "agents"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(Text, default="")
    # An emoji, or an image URL.
    avatar: Mapped[str] = mapped_column(String(512), default="")
    system_prompt: Mapped[str] = mapped_column(Text, default="")
    # [{"role": "user" | "assistant" | "system", "content": str}, …]
    preset_messages: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    greetings: Mapped[list[str]] = mapped_column(JSON, default=list)
    suggested_questions: Mapped[list[str]] = mapped_column(JSON, default=list)
    default_model: Mapped[str | None] = mapped_column(String(128))
    # Upstream parameters: temperature, top_p, max_tokens, presence/frequency penalty.
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    sort_order: Mapped[int] = mapped_column(Integer, default=0)
    # Set: a user's private agent (runtime setting user_agents_enabled), seen by them alone;
    # deleted with its owner (`users.service.admin_delete`). No foreign key: `agents` cannot get
    # one on SQLite without a rebuild, which would lose its AUTOINCREMENT.
    owner_id: Mapped[int | None] = mapped_column(Integer, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
