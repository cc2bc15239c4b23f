"""The chat's event streams, described: each SSE event's name and the JSON of its `data:` line.

Send, edit, regenerate and re-attach answer `text/event-stream`; these models put what those
streams carry into the OpenAPI document (so the SPA's generated types describe them too), and the
tests check real streams against them. Each frame also has an `id: <reply>.<n>` line (send it back
as `Last-Event-ID` to resume) and the stream sends `: keep-alive` comments while idle.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import FastAPI
from pydantic import BaseModel, Field, TypeAdapter

from app.conversations.schemas import MessageRead


class TextData(BaseModel):
    content: str = Field(description="The next piece of text, to append")


class UsageData(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    reasoning_tokens: int
    cached_tokens: int
    total_tokens: int
    source: Literal["provider", "estimated", "none"] = Field(
        description="`none`: nothing was generated (the reply was refused)"
    )


class ErrorData(BaseModel):
    message: str = Field(description="For the reader; the call log keeps the detail")
    code: str = Field(description="Stable: e.g. upstream_error, user_rate_limited, replay_gap")
    status: int | None = Field(default=None, description="Set when the reply was refused")
    retry_after: int | None = Field(default=None, description="Seconds, when worth retrying")


class DoneData(BaseModel):
    status: Literal["complete", "stopped", "error"]
    message: MessageRead | None = Field(description="The stored assistant message")


class MessageEvent(BaseModel):
    """The user's message as stored (first event of a send or an edit)."""

    event: Literal["message"]
    data: MessageRead


class DeltaEvent(BaseModel):
    event: Literal["delta"]
    data: TextData


class ReasoningEvent(BaseModel):
    event: Literal["reasoning"]
    data: TextData


class UsageEvent(BaseModel):
    event: Literal["usage"]
    data: UsageData


class ErrorEvent(BaseModel):
    event: Literal["error"]
    data: ErrorData


class DoneEvent(BaseModel):
    """The last event: how the reply ended, with the message as stored."""

    event: Literal["done"]
    data: DoneData


ChatStreamEvent = Annotated[
    MessageEvent | DeltaEvent | ReasoningEvent | UsageEvent | ErrorEvent | DoneEvent,
    Field(discriminator="event"),
]
EVENTS: TypeAdapter[Any] = TypeAdapter(ChatStreamEvent)
REF = "#/components/schemas/ChatStreamEvent"
EVENT_STREAM: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Server-sent events (`ChatStreamEvent`: the `event:` name and the JSON of "
        "`data:`): `message`, then `reasoning` and `delta` as the answer arrives, `usage`, "
        "`error` if it failed, and `done` last. Each has an id `<reply>.<n>`; send it back as "
        "`Last-Event-ID` to resume.",
        "content": {"text/event-stream": {"schema": {"$ref": REF}}},
    }
}


def install(app: FastAPI) -> None:
    """Add `ChatStreamEvent` and the models it names to the OpenAPI components."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = generate()
            described = EVENTS.json_schema(ref_template="#/components/schemas/{model}")
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            for name, definition in described.pop("$defs", {}).items():
                components.setdefault(name, definition)
            components["ChatStreamEvent"] = described
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
