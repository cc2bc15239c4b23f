from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

ModelName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128)]
AgentName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
LongText = Annotated[str, Field(max_length=100_000)]
MAX_PRESET_MESSAGES = 50


class ChatParams(BaseModel):
    """Upstream sampling parameters; omitted ones are left to the model's defaults."""

    model_config = ConfigDict(extra="forbid")

    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    max_tokens: int | None = Field(default=None, ge=1, le=1_000_000)
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)

    def upstream(self) -> dict[str, float | int]:
        return {k: v for k, v in self.model_dump().items() if v is not None}


class PresetMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Literal["system", "user", "assistant"]
    content: Annotated[str, Field(min_length=1, max_length=100_000)]


PresetMessages = Annotated[list[PresetMessage], Field(max_length=MAX_PRESET_MESSAGES)]
Greetings = Annotated[
    list[Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4000)]],
    Field(max_length=10),
]
Starters = Annotated[
    list[Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]],
    Field(max_length=4, description="Up to 4 suggested first questions"),
]


class AgentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: AgentName
    description: Annotated[str, Field(max_length=2000)] = ""
    avatar: Annotated[str, Field(max_length=512, description="An emoji or an image URL")] = ""
    system_prompt: LongText = ""
    preset_messages: PresetMessages = Field(default_factory=list)
    greetings: Greetings = Field(
        default_factory=list, description="Shown as the first assistant bubble; never sent"
    )
    suggested_questions: Starters = Field(default_factory=list)
    default_model: ModelName | None = None
    params: ChatParams = Field(default_factory=ChatParams)
    enabled: bool = True
    is_default: bool = Field(default=False, description="Used for new chats that name no agent")
    sort_order: int = Field(default=0, ge=-100_000, le=100_000)


class PrivateAgentCreate(BaseModel):
    """A user's own agent: what it tells the model, its model, how it greets, what to ask."""

    model_config = ConfigDict(extra="forbid")

    name: AgentName
    description: Annotated[str, Field(max_length=2000)] = ""
    avatar: Annotated[str, Field(max_length=512, description="An emoji or an image URL")] = ""
    system_prompt: LongText = ""
    greetings: Greetings = Field(default_factory=list)
    suggested_questions: Starters = Field(default_factory=list)
    default_model: ModelName | None = None
    params: ChatParams = Field(default_factory=ChatParams)


class PrivateAgentUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: AgentName | None = None
    description: Annotated[str, Field(max_length=2000)] | None = None
    avatar: Annotated[str, Field(max_length=512)] | None = None
    system_prompt: LongText | None = None
    greetings: Greetings | None = None
    suggested_questions: Starters | None = None
    default_model: ModelName | None = None
    params: ChatParams | None = None


class AgentUpdate(BaseModel):
    """Omitted fields stay as they are."""

    model_config = ConfigDict(extra="forbid")

    name: AgentName | None = None
    description: Annotated[str, Field(max_length=2000)] | None = None
    avatar: Annotated[str, Field(max_length=512)] | None = None
    system_prompt: LongText | None = None
    preset_messages: PresetMessages | None = None
    greetings: Greetings | None = None
    suggested_questions: Starters | None = None
    default_model: ModelName | None = None
    params: ChatParams | None = None
    enabled: bool | None = None
    is_default: bool | None = None
    sort_order: int | None = Field(default=None, ge=-100_000, le=100_000)


class AgentRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    description: str
    avatar: str
    system_prompt: str
    preset_messages: list[PresetMessage]
    greetings: list[str]
    suggested_questions: list[str]
    default_model: str | None
    params: ChatParams
    enabled: bool
    is_default: bool
    sort_order: int
    owner_id: int | None = Field(default=None, description="Set: a user's private agent")
    created_at: datetime
    updated_at: datetime
