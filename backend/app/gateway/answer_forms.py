"""How an answer is read, per the format it comes in.

Every channel's answer to a chat request is a Chat Completions answer by the time it is read (its
dialect translated it): `CHAT`. A request passed through in a provider's own format is answered in
that format (`passthrough.FORMS`). A form says which stream events carry an answer (until one
does, another channel can still take the call), makes the processor that records text and usage
from a stream as it is relayed, reads a whole answer, and finds an error sent inside a 200.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from app.gateway.accounting import CallRecord
from app.gateway.chunks import ChunkResult, StreamProcessor, inband_error, process_complete
from app.gateway.request import Native
from app.gateway.upstream import UpstreamError


@dataclass(frozen=True, slots=True)
class Reading:
    """What reading one answer needs: the call's record (text and usage go there), the channel's
    key (scrubbed from errors), whether to split `<think>`, whether the client asked for usage,
    the model name to show (a mapped channel's), and the request in its own format."""

    record: CallRecord
    secret: str
    split_think: bool = False
    include_usage: bool = True
    public_model: str | None = None
    native: Native | None = None


class Processor(Protocol):
    """One stream's payloads in, what to relay out (`ChunkResult`); `final`: the whole answer
    object once the stream has ended, where the format sends one."""

    final: dict[str, Any] | None

    def process(self, payload: bytes) -> ChunkResult: ...

    def flush(self) -> bytes | None: ...


class AnswerForm(Protocol):
    native: bool  # the provider's own format, relayed as whole SSE frames

    def processor(self, reading: Reading) -> Processor: ...

    def substantive(self, payload: bytes, secret: str) -> bool:
        """Whether a stream payload carries an answer. Raises for an in-band error."""
        ...

    def complete(self, reading: Reading, raw: bytes, parsed: dict[str, Any]) -> bytes:
        """A whole answer, as the client gets it; its usage and text recorded."""
        ...

    def inband(self, parsed: dict[str, Any], secret: str) -> UpstreamError | None: ...


_SUBSTANCE_FIELDS = (
    "content",
    "reasoning_content",
    "reasoning",
    "tool_calls",
    "function_call",
    "refusal",
)


class ChatForm:
    """Chat Completions (and legacy completions, embeddings): data-only SSE ending in `[DONE]`."""

    native = False

    def processor(self, reading: Reading) -> Processor:
        return StreamProcessor(
            reading.record,
            split_think=reading.split_think,
            include_usage=reading.include_usage,
            secret=reading.secret,
            public_model=reading.public_model,
        )

    def substantive(self, payload: bytes, secret: str) -> bool:
        if payload == b"[DONE]":
            return True
        try:
            parsed = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return False
        if not isinstance(parsed, dict):
            return False
        error = inband_error(parsed, secret)
        if error is not None:
            raise error
        if parsed.get("usage"):
            return True
        for choice in parsed.get("choices") or []:
            if not isinstance(choice, dict):
                continue
            if choice.get("finish_reason"):
                return True
            delta = choice.get("delta")
            if isinstance(delta, dict) and any(delta.get(name) for name in _SUBSTANCE_FIELDS):
                return True
            if choice.get("text"):  # legacy completions
                return True
        return False

    def complete(self, reading: Reading, raw: bytes, parsed: dict[str, Any]) -> bytes:
        return process_complete(
            reading.record,
            raw,
            parsed,
            split_think=reading.split_think,
            public_model=reading.public_model,
        )

    def inband(self, parsed: dict[str, Any], secret: str) -> UpstreamError | None:
        return inband_error(parsed, secret)


CHAT = ChatForm()
