from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from app.agents.schemas import ChatParams, ModelName, PresetMessage, PresetMessages
from app.core.ids import CountField, RowIdField
from app.core.instants import Instant

MAX_CONTENT_CHARS = 200_000
MAX_IMPORT_MESSAGES = 10_000
Title = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)]
Content = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_CONTENT_CHARS)
]
# interrupted: the server stopped while the reply was generated (the text it had is kept).
MessageStatus = Literal["complete", "stopped", "error", "interrupted"]


class ConversationCreate(BaseModel):
    """`agent_id` omitted: the default agent (if there is one) gives the starting context."""

    model_config = ConfigDict(extra="forbid")

    agent_id: RowIdField | None = None
    model: ModelName | None = None
    title: Title | None = None


class ConversationUpdate(BaseModel):
    """Omitted fields stay as they are. Setting a title stops it from being generated."""

    model_config = ConfigDict(extra="forbid")

    title: (
        Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
        | None
    ) = None
    pinned: bool | None = None
    archived: bool | None = None


class ContextUpdate(BaseModel):
    """The context of later replies. Omitted fields stay as they are; `model: null` clears it."""

    model_config = ConfigDict(extra="forbid")

    system_prompt: Annotated[str, Field(max_length=100_000)] | None = None
    preset_messages: PresetMessages | None = None
    model: ModelName | None = None
    params: ChatParams | None = None


class AgentBrief(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    avatar: str
    greetings: list[str]
    suggested_questions: list[str]


class ConversationRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    title: str
    title_source: str
    agent_id: int | None
    model: str | None
    system_prompt: str
    preset_messages: list[PresetMessage]
    params: ChatParams
    pinned: bool
    archived: bool
    message_count: int
    total_tokens: int
    created_at: datetime
    updated_at: datetime
    last_message_at: datetime


class ConversationSummary(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    title: str
    agent_id: int | None
    model: str | None
    pinned: bool
    archived: bool
    message_count: int
    last_message_at: datetime
    created_at: datetime


class MessageRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    conversation_id: int
    role: str
    content: str
    reasoning: str | None
    status: str
    error: str | None
    error_code: str | None
    model: str | None
    prompt_tokens: int
    completion_tokens: int
    reasoning_tokens: int
    total_tokens: int
    usage_source: str | None
    ttft_ms: int | None
    reasoning_ms: int | None
    duration_ms: int | None
    created_at: datetime


class ConversationDetail(ConversationRead):
    agent: AgentBrief | None = None
    messages: list[MessageRead] = Field(description="The newest messages, oldest first")
    messages_cursor: int | None = Field(
        description="Pass as `before` to /messages for older ones; null: there are none"
    )
    running_reply: str | None = Field(
        description="Id of the reply being generated now (re-attach with GET …/stream)"
    )


class MessagePage(BaseModel):
    items: list[MessageRead] = Field(description="Oldest first")
    next_cursor: int | None = Field(description="Pass as `before` for the page before this one")


class SendMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    content: Content
    model: ModelName | None = Field(default=None, description="Also becomes the chat's model")


class EditMessage(SendMessage):
    """Replace a user message's text; every later message is removed and a new reply starts."""


class Regenerate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: ModelName | None = None


class StopResult(BaseModel):
    stopped: bool = Field(description="Whether a running reply was stopped")
    reply_id: str | None
    status: str | None = Field(description="How the reply ended (stopped, complete, error)")


class ChatModels(BaseModel):
    items: list[str] = Field(description="Models the web chat can use now")
    default: str | None = Field(description="What a new chat starts with")


class AdminConversationRead(ConversationSummary):
    user_id: int
    username: str
    total_tokens: int


# ── export / import ──────────────────────────────────────────────────────────────────────────
EXPORT_FORMAT = "ai-chat-gateway.conversation"


class ExportedMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: Literal["user", "assistant"]
    content: Annotated[str, Field(max_length=MAX_CONTENT_CHARS)]
    reasoning: Annotated[str, Field(max_length=MAX_CONTENT_CHARS)] | None = None
    status: MessageStatus = "complete"
    model: Annotated[str, Field(max_length=128)] | None = None
    prompt_tokens: CountField = 0
    completion_tokens: CountField = 0
    reasoning_tokens: CountField = 0
    total_tokens: CountField = 0
    created_at: Instant | None = None


class ConversationExport(BaseModel):
    """What `GET …/export?format=json` writes and `POST /api/conversations/import` reads."""

    model_config = ConfigDict(extra="ignore")

    format: Literal["ai-chat-gateway.conversation"] = "ai-chat-gateway.conversation"
    version: Literal[1] = 1
    title: Annotated[str, Field(max_length=200)] = ""
    model: Annotated[str, Field(max_length=128)] | None = None
    system_prompt: Annotated[str, Field(max_length=100_000)] = ""
    preset_messages: PresetMessages = Field(default_factory=list)
    params: ChatParams = Field(default_factory=ChatParams)
    created_at: Instant | None = None
    exported_at: Instant | None = None
    messages: Annotated[list[ExportedMessage], Field(max_length=MAX_IMPORT_MESSAGES)]
