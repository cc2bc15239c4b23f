"""What a reply is: what it needs to start (`ReplySpec`), how it went (`Outcome`), and the
running reply itself (`Reply`), with the shapes it is saved and reported in."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, Literal

from app.conversations.replay import RedisMirror, ReplyBuffer
from app.gateway.calls import ModelCall
from app.gateway.usage import Usage
from app.ratelimit.admission import CallerLimits

Status = Literal["complete", "stopped", "error"]


@dataclass
class ReplySpec:
    """Everything a reply needs, gathered (and the user's message stored) before it starts."""

    conversation_id: int
    user_id: int
    limits: CallerLimits
    model: str
    messages: list[dict[str, Any]]
    params: dict[str, Any]
    request_id: str
    client_ip: str | None
    user_message: dict[str, Any] | None = None  # the stored user message, for the `message` event
    name_after: str | None = None  # the question, when this reply should name the conversation


@dataclass
class Outcome:
    status: Status = "complete"
    error: dict[str, Any] | None = None
    first_reasoning: float | None = None
    first_text: float | None = None
    last_reasoning: float | None = None

    def fail(self, message: str, code: str, **extra: Any) -> None:
        self.status = "error"
        self.error = {"message": message, "code": code, **extra}

    def reasoning_ms(self) -> int | None:
        if self.first_reasoning is None:
            return None
        end = self.first_text or self.last_reasoning or self.first_reasoning
        return int((end - self.first_reasoning) * 1000)


@dataclass
class Reply:
    id: str
    spec: ReplySpec
    buffer: ReplyBuffer
    mirror: RedisMirror | None
    task: asyncio.Task[None] | None = None
    stop_reason: str | None = None
    generating: bool = False
    renewal: asyncio.Task[None] | None = field(default=None, repr=False)

    def stop(self, reason: str) -> None:
        """Stop the generation (once). Before it has begun, it will not begin; after it has
        ended, this does nothing."""
        if self.stop_reason is not None:
            return
        self.stop_reason = reason
        if self.generating and self.task is not None:
            self.task.cancel()


def checkpoint(spec: ReplySpec, call: ModelCall) -> dict[str, Any]:
    """The reply as far as it has come, for finishing it if this server dies mid-way."""
    return {
        "conversation_id": spec.conversation_id,
        "model": spec.model,
        "request_id": spec.request_id,
        "content": call.text,
        "reasoning": call.reasoning,
    }


def usage_payload(usage: Usage) -> dict[str, Any]:
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "reasoning_tokens": usage.reasoning_tokens,
        "cached_tokens": usage.cached_tokens,
        "total_tokens": usage.total_tokens,
        "source": usage.source,
    }
