"""Reading upstream answers: stream chunks one by one, or a whole non-stream body.

Each stream chunk is parsed once (orjson) to pick out usage, in-band errors and the text (kept for
estimating usage when the provider reports none). The chunk is relayed as the upstream's own bytes
unless it has to change (inline `<think>` split into `reasoning_content`), so the common path does no
re-serialisation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from app.gateway.accounting import CallRecord
from app.gateway.think import ThinkSplitter, split_complete
from app.gateway.upstream import UpstreamError, scrub
from app.gateway.usage import from_provider

DONE = b"[DONE]"
REASONING_FIELDS = ("reasoning_content", "reasoning")


@dataclass(slots=True)
class ChunkResult:
    relay: bytes | None  # the data payload to pass on (None: drop this chunk)
    content: str = ""
    reasoning: str = ""
    done: bool = False


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


class StreamProcessor:
    def __init__(
        self, call: CallRecord, *, split_think: bool, include_usage: bool, secret: str
    ) -> None:
        self._call = call
        self._split = split_think
        self._include_usage = include_usage
        self._secret = secret
        self._splitters: dict[int, ThinkSplitter] = {}
        self.malformed = 0

    def process(self, payload: bytes) -> ChunkResult:
        """One SSE data payload. Raises `UpstreamError` for an in-band error."""
        if payload == DONE:
            return ChunkResult(relay=None, done=True)
        try:
            parsed = orjson.loads(payload)
        except orjson.JSONDecodeError:
            self.malformed += 1
            return ChunkResult(relay=None)
        if not isinstance(parsed, dict):
            self.malformed += 1
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
        choices = parsed.get("choices")
        if not choices:
            # The usage-only chunk: passed on only if the client asked for usage.
            return ChunkResult(relay=payload if self._include_usage else None)
        content_out: list[str] = []
        reasoning_out: list[str] = []
        changed = False
        for choice in choices:
            delta = choice.get("delta") if isinstance(choice, dict) else None
            if not isinstance(delta, dict):
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
            if isinstance(content, str) and content:
                call.completion_parts.append(content)
                content_out.append(content)
            for name in REASONING_FIELDS:
                reasoning = delta.get(name)
                if isinstance(reasoning, str) and reasoning:
                    call.reasoning_parts.append(reasoning)
                    reasoning_out.append(reasoning)
                    break
            tool_calls = delta.get("tool_calls")
            if isinstance(tool_calls, list):
                for tool_call in tool_calls:
                    function = tool_call.get("function") if isinstance(tool_call, dict) else None
                    if isinstance(function, dict):
                        call.tool_parts.append(str(function.get("arguments") or ""))
                call.mark_first_token()
        if content_out or reasoning_out:
            call.mark_first_token()
        return ChunkResult(
            relay=orjson.dumps(parsed) if changed else payload,
            content="".join(content_out),
            reasoning="".join(reasoning_out),
        )

    def flush(self, template: dict[str, Any] | None = None) -> bytes | None:
        """Text a think-splitter still holds at the end, as one more chunk (rare)."""
        pieces = []
        for index, splitter in self._splitters.items():
            reasoning, content = splitter.flush()
            if reasoning or content:
                delta: dict[str, Any] = {}
                if content:
                    delta["content"] = content
                    self._call.completion_parts.append(content)
                if reasoning:
                    delta["reasoning_content"] = reasoning
                    self._call.reasoning_parts.append(reasoning)
                pieces.append({"index": index, "delta": delta, "finish_reason": None})
        if not pieces:
            return None
        chunk = {**(template or {}), "object": "chat.completion.chunk", "choices": pieces}
        return orjson.dumps(chunk)


def process_complete(
    call: CallRecord, raw: bytes, parsed: dict[str, Any], *, split_think: bool
) -> bytes:
    """A whole non-stream answer: record usage and text; split `<think>` if the channel asks."""
    provider_usage = from_provider(parsed.get("usage"))
    if provider_usage is not None:
        call.provider_usage = provider_usage
    changed = False
    for choice in parsed.get("choices") or []:
        message = choice.get("message") if isinstance(choice, dict) else None
        if not isinstance(message, dict):
            continue
        content = message.get("content")
        if split_think and isinstance(content, str):
            reasoning, rest = split_complete(content)
            if reasoning is not None:
                message["content"] = rest
                message["reasoning_content"] = reasoning
                content = rest
                changed = True
        if isinstance(content, str):
            call.completion_parts.append(content)
        for name in REASONING_FIELDS:
            if isinstance(message.get(name), str):
                call.reasoning_parts.append(message[name])
                break
        for tool_call in message.get("tool_calls") or []:
            function = tool_call.get("function") if isinstance(tool_call, dict) else None
            if isinstance(function, dict):
                call.tool_parts.append(str(function.get("arguments") or ""))
    return orjson.dumps(parsed) if changed else raw
