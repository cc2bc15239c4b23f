"""What a model call yields as it runs (`ModelCall.events`), one type per kind of news.

An endpoint that passes the provider's bytes through (`/v1/chat/completions`) reads `Relay`; one
that builds its own answer (the web chat, and the translating endpoints to come) reads the deltas.
Every stream ends with either `CallEnd` (after `UsageReport`) or `CallError`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from app.gateway.accounting import EndReason
from app.gateway.usage import Usage


@dataclass(frozen=True, slots=True)
class Relay:
    """The payloads of one network read, as the client should get them: SSE data for chat, whole
    SSE frames for an answer passed through in its own format (`ModelCall.native`)."""

    payloads: list[bytes]
    finished: bool  # the last read (for chat, `[DONE]` follows)
    final: dict[str, Any] | None = None  # on the last: the whole answer, where the format sends one
    chunks: list[dict[str, Any]] = field(default_factory=list)  # the payloads parsed (for chat)


@dataclass(frozen=True, slots=True)
class TextDelta:
    text: str


@dataclass(frozen=True, slots=True)
class ReasoningDelta:
    text: str


@dataclass(frozen=True, slots=True)
class ToolCallDelta:
    """Argument text of the tool calls the model is writing (in the order it came)."""

    arguments: str


@dataclass(frozen=True, slots=True)
class UsageReport:
    usage: Usage


@dataclass(frozen=True, slots=True)
class CallError:
    """The stream failed part-way; `message` is for the caller (the call log keeps the detail)."""

    message: str
    code: str
    type: str = "upstream_error"


@dataclass(frozen=True, slots=True)
class CallEnd:
    reason: EndReason


CallEvent = Relay | TextDelta | ReasoningDelta | ToolCallDelta | UsageReport | CallError | CallEnd
