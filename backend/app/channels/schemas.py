from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    StringConstraints,
    model_validator,
)

from app.core.protocol_text import header_token
from app.gateway.url_guard import normalise_base_url
from app.models import ChannelStatus

ModelName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128)]
Tag = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=32)]
BaseURL = Annotated[str, Field(min_length=8, max_length=512), AfterValidator(normalise_base_url)]
ApiKeyValue = Annotated[
    SecretStr, Field(min_length=1, max_length=4096), AfterValidator(header_token)
]
Seconds = Annotated[float, Field(gt=0, le=86_400)]
ChannelType = Literal["openai", "azure", "anthropic", "gemini"]
ApiVersion = Annotated[str, StringConstraints(pattern=r"^\d{4}-\d{2}-\d{2}(-preview)?$")]


def _unique(values: list[str]) -> list[str]:
    return list(dict.fromkeys(values))


Models = Annotated[list[ModelName], Field(max_length=1000), AfterValidator(_unique)]
Tags = Annotated[list[Tag], Field(max_length=20), AfterValidator(_unique)]
Mapping = Annotated[dict[ModelName, ModelName], Field(max_length=1000)]


RESPONSES_TYPES = ("openai", "azure")
RESPONSES_TYPES_MESSAGE = "responses_api is for OpenAI-compatible and Azure channels"


class ChannelCreate(BaseModel):
    """`models` are the public names clients use; `model_mapping` renames some of them upstream.

    A channel serves every name in `models` and every key of `model_mapping`.
    """

    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
    type: ChannelType = Field(
        default="openai",
        description="openai: any OpenAI-compatible API. azure: Azure OpenAI (the key goes as "
        "api-key; with api_version, calls go to deployment URLs). anthropic: Anthropic's "
        "Messages API (base URL https://api.anthropic.com/v1). gemini: Google's Gemini API "
        "(base URL https://generativelanguage.googleapis.com/v1beta)",
    )
    base_url: BaseURL = Field(
        description="OpenAI base URL including the version, e.g. https://api.deepseek.com/v1; "
        "Azure: https://<resource>.openai.azure.com/openai/v1, or the resource's address "
        "(https://<resource>.openai.azure.com) with api_version"
    )
    api_version: ApiVersion | None = Field(
        default=None,
        description="Azure only: e.g. 2024-10-21. Calls then go to "
        "<base_url>/openai/deployments/<upstream model>/…?api-version=…",
    )
    api_key: ApiKeyValue
    models: Models = Field(default_factory=list)
    model_mapping: Mapping = Field(default_factory=dict)
    priority: int = Field(default=0, ge=-1000, le=1000)
    weight: int = Field(default=1, ge=1, le=1000)
    rpm_limit: int | None = Field(default=None, ge=1, le=1_000_000)
    connect_timeout: Seconds | None = None
    first_byte_timeout: Seconds | None = None
    idle_timeout: Seconds | None = None
    total_timeout: Seconds | None = None
    enabled: bool = True
    split_think: bool = Field(
        default=False, description="Move a leading <think>…</think> into reasoning_content"
    )
    responses_api: bool = Field(
        default=False,
        description="openai and azure only: the upstream serves OpenAI's Responses API, so "
        "/v1/responses calls are passed through to it as they are (built-in tools and all) "
        "instead of being translated to Chat Completions",
    )
    tags: Tags = Field(default_factory=list)
    notes: Annotated[str, Field(max_length=4000)] | None = None

    @model_validator(mode="after")
    def _version_for_azure(self) -> ChannelCreate:
        if self.api_version is not None and self.type != "azure":
            raise ValueError("api_version is for Azure OpenAI channels (type azure)")
        if self.responses_api and self.type not in RESPONSES_TYPES:
            raise ValueError(RESPONSES_TYPES_MESSAGE)
        return self


class ChannelUpdate(BaseModel):
    """Omitted fields stay as they are. Send `api_key` only to replace the key."""

    model_config = ConfigDict(extra="forbid")

    name: (
        Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)] | None
    ) = None
    type: ChannelType | None = None
    base_url: BaseURL | None = None
    api_version: ApiVersion | None = None
    api_key: ApiKeyValue | None = None
    models: Models | None = None
    model_mapping: Mapping | None = None
    priority: int | None = Field(default=None, ge=-1000, le=1000)
    weight: int | None = Field(default=None, ge=1, le=1000)
    rpm_limit: int | None = Field(default=None, ge=1, le=1_000_000)
    connect_timeout: Seconds | None = None
    first_byte_timeout: Seconds | None = None
    idle_timeout: Seconds | None = None
    total_timeout: Seconds | None = None
    split_think: bool | None = None
    responses_api: bool | None = None
    tags: Tags | None = None
    notes: Annotated[str, Field(max_length=4000)] | None = None


class ChannelRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    type: str
    base_url: str
    api_version: str | None
    api_key_hint: str = Field(
        description="The key, masked (sk-…abcd). The key itself is never returned."
    )
    models: list[str]
    model_mapping: dict[str, str]
    priority: int
    weight: int
    rpm_limit: int | None
    connect_timeout: float
    first_byte_timeout: float
    idle_timeout: float
    total_timeout: float
    status: ChannelStatus
    status_reason: str | None
    status_detail: str | None
    status_changed_at: datetime | None
    split_think: bool
    responses_api: bool
    tags: list[str]
    notes: str | None
    last_test_at: datetime | None
    last_test_ok: bool | None
    last_test_latency_ms: int | None
    last_test_error: str | None
    created_at: datetime
    updated_at: datetime
    breaker_open: list[str] = Field(
        default_factory=list,
        description="Upstream models whose circuit breaker is open now (on the process answering)",
    )


class ChannelTestRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: ModelName | None = Field(
        default=None, description="Defaults to the channel's first model"
    )


class ChannelTestResult(BaseModel):
    ok: bool
    latency_ms: int
    model: str
    status_code: int | None = None
    error: str | None = None


class FetchModelsRequest(BaseModel):
    """For a channel not saved yet: where to look, and with which key."""

    model_config = ConfigDict(extra="forbid")

    type: ChannelType = "openai"
    base_url: BaseURL
    api_version: ApiVersion | None = None
    api_key: ApiKeyValue


class FetchModelsResult(BaseModel):
    models: list[str]
