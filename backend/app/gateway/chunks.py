"""Reading upstream answers: stream chunks one by one, or a whole non-stream body.

Each stream chunk is parsed once (orjson) to pick out usage, in-band errors and the text (kept for
estimating usage when the provider reports none). Malformed chunks are dropped, not relayed. The chunk is relayed as the upstream's own bytes
unless it has to change (inline `<think>` split into `reasoning_content`), so the common path does no
re-serialisation.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import orjson

from app.gateway.accounting import CallRecord
from app.gateway.think import ThinkSplitter, split_complete
from app.gateway.upstream import UpstreamError, scrub
from app.gateway.usage import from_provider

DONE = b"[DONE]"
REASONING_FIELDS = ("reasoning_content", "reasoning")
# Kept from the upstream's chunks for a chunk the gateway has to add itself.
TEMPLATE_FIELDS = ("id", "object", "created", "model")

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class ChunkResult:
    relay: bytes | None  # the data payload to pass on (None: drop this chunk)
    done: bool = False
    parsed: dict[str, Any] | None = None  # the chat chunk relayed, as parsed (for translators)


def inband_error(parsed: Any, secret: str) -> UpstreamError | None:
    """An `{"error": …}` object sent inside a 200 answer."""
    if not isinstance(parsed, dict) or "error" not in parsed or parsed.get("choices"):
        return None
    error = parsed["error"]
    if isinstance(error, dict):
        message = str(error.get("message") or "upstream reported an error")
        code = error.get("code")
        code_text = str(code) if code is not None else None
    else:
        message, code_text = str(error), None
    return UpstreamError("inband", scrub(message, secret)[:1000], code=code_text)


def record_parts(call: CallRecord, part: dict[str, Any], content: Any) -> bool:
    """Keep the text of one delta or message for estimating usage. True if it said anything."""
    said = False
    if isinstance(content, str) and content:
        call.completion_parts.append(content)
        said = True
    for name in REASONING_FIELDS:
        reasoning = part.get(name)
        if isinstance(reasoning, str) and reasoning:
            call.reasoning_parts.append(reasoning)
            said = True
            break
    tool_calls = part.get("tool_calls")
    if isinstance(tool_calls, list):
        for tool_call in tool_calls:
            function = tool_call.get("function") if isinstance(tool_call, dict) else None
            if isinstance(function, dict):
                call.tool_parts.append(str(function.get("arguments") or ""))
                said = True
    return said


class StreamProcessor:
    final: dict[str, Any] | None = None  # chat streams send no whole answer at the end

    def __init__(
        self,
        call: CallRecord,
        *,
        split_think: bool,
        include_usage: bool,
        secret: str,
        public_model: str | None = None,
    ) -> None:
        self._call = call
        self._public_model = public_model  # set: every chunk's `model` becomes this
        self._split = split_think
        self._include_usage = include_usage
        self._secret = secret
        self._splitters: dict[int, ThinkSplitter] = {}
        self._template: dict[str, Any] = {}
        self._warned = False

    def process(self, payload: bytes) -> ChunkResult:
        """One SSE data payload. Raises `UpstreamError` for an in-band error."""
        if payload == DONE:
            return ChunkResult(relay=None, done=True)
        try:
            parsed = orjson.loads(payload)
        except orjson.JSONDecodeError:
            parsed = None
        if not isinstance(parsed, dict):
            if not self._warned:
                self._warned = True
                logger.warning(
                    "Dropped a malformed chunk from the upstream (request %s, model %s)",
                    self._call.request_id,
                    self._call.upstream_model,
                )
            return ChunkResult(relay=None)
        error = inband_error(parsed, self._secret)
        if error is not None:
            raise error
        call = self._call
        usage = parsed.get("usage")
        if usage:
            provider_usage = from_provider(usage)
            if provider_usage is not None:
                call.provider_usage = provider_usage  # cumulative: the last one wins
        renamed = self._public_model is not None and "model" in parsed
        if renamed:
            parsed["model"] = self._public_model
        choices = parsed.get("choices")
        if not choices:
            # The usage-only chunk: passed on only if the client asked for usage.
            if not self._include_usage:
                return ChunkResult(relay=None)
            return ChunkResult(relay=orjson.dumps(parsed) if renamed else payload, parsed=parsed)
        if not self._template:
            self._template = {k: parsed[k] for k in TEMPLATE_FIELDS if k in parsed}
        changed = renamed
        if usage and not self._include_usage:
            # A last chunk with both an answer and usage (LiteLLM, several providers): the
            # answer goes on, the usage the client did not ask for does not.
            del parsed["usage"]
            changed = True
        for choice in choices:
            delta = choice.get("delta") if isinstance(choice, dict) else None
            if not isinstance(delta, dict):
                text = choice.get("text") if isinstance(choice, dict) else None
                if isinstance(text, str) and text:  # legacy completions
                    call.completion_parts.append(text)
                    call.mark_first_token()
                continue
            content = delta.get("content")
            if self._split and isinstance(content, str) and content:
                index = choice.get("index", 0)
                splitter = self._splitters.setdefault(
                    index if isinstance(index, int) else 0, ThinkSplitter()
                )
                reasoning_part, content = splitter.feed(content)
                delta["content"] = content
                if reasoning_part:
                    delta["reasoning_content"] = reasoning_part
                changed = True
            if record_parts(call, delta, content):
                call.mark_first_token()
        return ChunkResult(relay=orjson.dumps(parsed) if changed else payload, parsed=parsed)

    def flush(self) -> bytes | None:
        """Text a think-splitter still holds at the end, as one more chunk (rare)."""
        pieces = []
        for index, splitter in self._splitters.items():
            reasoning, content = splitter.flush()
            if reasoning or content:
                delta: dict[str, Any] = {}
                if content:
                    delta["content"] = content
                if reasoning:
                    delta["reasoning_content"] = reasoning
                record_parts(self._call, delta, content)
                pieces.append({"index": index, "delta": delta, "finish_reason": None})
        if not pieces:
            return None
        return orjson.dumps({**self._template, "choices": pieces})


def process_complete(
    call: CallRecord,
    raw: bytes,
    parsed: dict[str, Any],
    *,
    split_think: bool,
    public_model: str | None = None,
) -> bytes:
    """A whole non-stream answer: record usage and text; split `<think>` if the channel asks;
    show `public_model` as the answer's model if the channel renamed it."""
    provider_usage = from_provider(parsed.get("usage"))
    if provider_usage is not None:
        call.provider_usage = provider_usage
    changed = False
    if public_model is not None and "model" in parsed:
        parsed["model"] = public_model
        changed = True
    for choice in parsed.get("choices") or []:
        message = choice.get("message") if isinstance(choice, dict) else None
        if not isinstance(message, dict):
            text = choice.get("text") if isinstance(choice, dict) else None
            if isinstance(text, str):  # legacy completions
                call.completion_parts.append(text)
            continue
        content = message.get("content")
        if split_think and isinstance(content, str):
            reasoning, rest = split_complete(content)
            if reasoning is not None:
                message["content"] = content = rest
                message["reasoning_content"] = reasoning
                changed = True
        record_parts(call, message, content)
    return orjson.dumps(parsed) if changed else raw
