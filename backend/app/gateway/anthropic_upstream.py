"""Anthropic as a channel: Chat Completions requests sent as Messages requests, answers read back.

A channel of type `anthropic` speaks Anthropic's Messages API natively (`x-api-key`,
`anthropic-version`). The gateway's calls stay in the Chat Completions form everywhere else, so
only the edges change:

- `to_messages_body`: the chat request as a Messages request (system and developer messages as
  `system`, content parts as blocks — images from data or https URLs, PDFs —, tool calls as
  `tool_use`, tool messages as `tool_result` blocks in a user turn, consecutive turns of one role
  merged as Anthropic requires; `max_tokens` defaulted, `stop`, `tools`, `tool_choice`,
  `parallel_tool_calls`, `user`, `reasoning_effort` as a thinking budget);
- `to_chat_completion`: a whole Messages answer as a chat completion (thinking as
  `reasoning_content`, tool uses as `tool_calls`, cached prompt tokens counted in, as OpenAI does);
- `ChatChunks`: Anthropic's stream events as chat chunks (`[DONE]` after `message_stop`, usage in
  a usage-only chunk, an `error` event passed on as the in-band error it is).
"""

from __future__ import annotations

from typing import Any

import orjson

from app.gateway.sse import SSEDecoder
from app.gateway.wire_values import as_object, data_url, non_negative

ANTHROPIC_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 4096
THINKING_BUDGET = {"minimal": 1024, "low": 1024, "medium": 4096, "high": 16384}
STOP_TO_FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


# ── request ──────────────────────────────────────────────────────────────────────────────────
def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            str(part.get("text") or "")
            for part in content
            if isinstance(part, dict) and part.get("type") == "text"
        )
    return ""


def _source(url: str) -> dict[str, Any]:
    found = data_url(url)
    if found:
        return {"type": "base64", "media_type": found[0], "data": found[1]}
    return {"type": "url", "url": url}


def _blocks(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    blocks: list[dict[str, Any]] = []
    for part in content if isinstance(content, list) else []:
        if not isinstance(part, dict):
            continue
        kind = part.get("type")
        if kind == "text":
            blocks.append({"type": "text", "text": str(part.get("text") or "")})
        elif kind == "image_url":
            image = part.get("image_url")
            url = image.get("url") if isinstance(image, dict) else image
            if isinstance(url, str):
                blocks.append({"type": "image", "source": _source(url)})
        elif kind == "file":
            data = as_object(part.get("file")).get("file_data")
            if isinstance(data, str):
                blocks.append({"type": "document", "source": _source(data)})
    return blocks


def _arguments(text: Any) -> Any:
    try:
        value = orjson.loads(text or "{}")
    except (orjson.JSONDecodeError, TypeError):
        return {}
    return value if isinstance(value, dict) else {}


def _turns(messages: list[Any]) -> tuple[str, list[dict[str, Any]]]:
    system: list[str] = []
    turns: list[dict[str, Any]] = []

    def add(role: str, blocks: list[dict[str, Any]]) -> None:
        if not blocks:
            return
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)  # Anthropic wants the roles to alternate
        else:
            turns.append({"role": role, "content": blocks})

    for message in messages:
        if not isinstance(message, dict):
            continue
        role = message.get("role")
        if role in ("system", "developer"):
            system.append(_text(message.get("content")))
        elif role == "user":
            add("user", _blocks(message.get("content")))
        elif role == "assistant":
            blocks = _blocks(message.get("content"))
            for call in message.get("tool_calls") or []:
                function = call.get("function") if isinstance(call, dict) else None
                if isinstance(function, dict):
                    blocks.append(
                        {
                            "type": "tool_use",
                            "id": str(call.get("id") or ""),
                            "name": str(function.get("name") or ""),
                            "input": _arguments(function.get("arguments")),
                        }
                    )
            add("assistant", blocks)
        elif role in ("tool", "function"):
            add(
                "user",
                [
                    {
                        "type": "tool_result",
                        "tool_use_id": str(message.get("tool_call_id") or ""),
                        "content": _text(message.get("content")),
                    }
                ],
            )
    return "\n\n".join(part for part in system if part), turns


def _tool_choice(choice: Any, parallel: Any) -> dict[str, Any] | None:
    result: dict[str, Any] | None = None
    if choice == "auto":
        result = {"type": "auto"}
    elif choice == "required":
        result = {"type": "any"}
    elif choice == "none":
        result = {"type": "none"}
    elif isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        result = {"type": "tool", "name": str(choice["function"].get("name") or "")}
    if parallel is False:
        result = {**(result or {"type": "auto"}), "disable_parallel_tool_use": True}
    return result


def to_messages_body(chat: dict[str, Any], upstream_model: str, stream: bool) -> bytes:
    system, turns = _turns(chat.get("messages") or [])
    body: dict[str, Any] = {"model": upstream_model, "messages": turns}
    max_tokens = chat.get("max_completion_tokens") or chat.get("max_tokens") or DEFAULT_MAX_TOKENS
    body["max_tokens"] = max_tokens
    if system:
        body["system"] = system
    for name in ("temperature", "top_p"):
        if chat.get(name) is not None:
            body[name] = chat[name]
    stop = chat.get("stop")
    if stop:
        body["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    tools = [
        {
            "name": tool["function"].get("name"),
            "description": tool["function"].get("description") or "",
            "input_schema": tool["function"].get("parameters") or {"type": "object"},
        }
        for tool in chat.get("tools") or []
        if isinstance(tool, dict) and isinstance(tool.get("function"), dict)
    ]
    if tools:
        body["tools"] = tools
        choice = _tool_choice(chat.get("tool_choice"), chat.get("parallel_tool_calls"))
        if choice is not None:
            body["tool_choice"] = choice
    if isinstance(chat.get("user"), str):
        body["metadata"] = {"user_id": chat["user"]}
    budget = THINKING_BUDGET.get(str(chat.get("reasoning_effort")))
    if budget is not None:
        body["thinking"] = {"type": "enabled", "budget_tokens": budget}
        body["max_tokens"] = max(max_tokens, budget + 1024)
    if stream:
        body["stream"] = True
    return orjson.dumps(body)


# ── answers ──────────────────────────────────────────────────────────────────────────────────
def chat_usage(usage: Any, output_tokens: int | None = None) -> dict[str, Any]:
    usage = usage if isinstance(usage, dict) else {}
    cached = non_negative(usage.get("cache_read_input_tokens"))
    prompt = (
        non_negative(usage.get("input_tokens"))
        + cached
        + non_negative(usage.get("cache_creation_input_tokens"))
    )
    completion = (
        non_negative(usage.get("output_tokens")) if output_tokens is None else output_tokens
    )
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached},
    }


def to_chat_completion(message: dict[str, Any]) -> dict[str, Any]:
    text: list[str] = []
    reasoning: list[str] = []
    calls: list[dict[str, Any]] = []
    for block in message.get("content") or []:
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        if kind == "text":
            text.append(str(block.get("text") or ""))
        elif kind == "thinking":
            reasoning.append(str(block.get("thinking") or ""))
        elif kind == "tool_use":
            calls.append(
                {
                    "id": str(block.get("id") or ""),
                    "type": "function",
                    "function": {
                        "name": str(block.get("name") or ""),
                        "arguments": orjson.dumps(block.get("input") or {}).decode(),
                    },
                }
            )
    answer: dict[str, Any] = {"role": "assistant", "content": "".join(text) or None}
    if reasoning:
        answer["reasoning_content"] = "".join(reasoning)
    if calls:
        answer["tool_calls"] = calls
    return {
        "id": str(message.get("id") or ""),
        "object": "chat.completion",
        "model": message.get("model"),
        "choices": [
            {
                "index": 0,
                "message": answer,
                "finish_reason": STOP_TO_FINISH.get(str(message.get("stop_reason")), "stop"),
            }
        ],
        "usage": chat_usage(message.get("usage")),
    }


class ChatChunks:
    """Anthropic's stream, read as chat chunk payloads (the SSE decoder's interface)."""

    def __init__(self) -> None:
        self._sse = SSEDecoder()
        self._base: dict[str, Any] = {"object": "chat.completion.chunk"}
        self._usage: dict[str, Any] = {}
        self._tools: dict[int, int] = {}  # block index -> tool call index

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        return orjson.dumps({**self._base, "choices": [choice]})

    def feed(self, data: bytes) -> list[bytes]:
        out: list[bytes] = []
        for payload in self._sse.feed(data):
            out += self._event(payload)
        return out

    def finish(self) -> list[bytes]:
        out: list[bytes] = []
        for payload in self._sse.finish():
            out += self._event(payload)
        return out

    def _event(self, payload: bytes) -> list[bytes]:
        try:
            event = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return [payload]  # dropped downstream as malformed
        if not isinstance(event, dict):
            return [payload]
        kind = event.get("type")
        if kind == "message_start":
            message = as_object(event.get("message"))
            self._base = {
                "id": message.get("id"),
                "object": "chat.completion.chunk",
                "model": message.get("model"),
            }
            self._usage = dict(message.get("usage") or {})
            return [self._chunk({"role": "assistant", "content": ""})]
        if kind == "content_block_start":
            block = as_object(event.get("content_block"))
            if block.get("type") != "tool_use":
                return []
            index = self._tools[int(event.get("index") or 0)] = len(self._tools)
            call = {
                "index": index,
                "id": block.get("id"),
                "type": "function",
                "function": {"name": block.get("name"), "arguments": ""},
            }
            return [self._chunk({"tool_calls": [call]})]
        if kind == "content_block_delta":
            delta = as_object(event.get("delta"))
            kind = delta.get("type")
            if kind == "text_delta":
                return [self._chunk({"content": delta.get("text") or ""})]
            if kind == "thinking_delta":
                return [self._chunk({"reasoning_content": delta.get("thinking") or ""})]
            if kind == "input_json_delta":
                index = self._tools.get(int(event.get("index") or 0), 0)
                call = {"index": index, "function": {"arguments": delta.get("partial_json") or ""}}
                return [self._chunk({"tool_calls": [call]})]
            return []
        if kind == "message_delta":
            delta = as_object(event.get("delta"))
            self._usage.update(event.get("usage") or {})
            finish = STOP_TO_FINISH.get(str(delta.get("stop_reason")), "stop")
            return [self._chunk({}, finish)]
        if kind == "message_stop":
            usage = orjson.dumps({**self._base, "choices": [], "usage": chat_usage(self._usage)})
            return [usage, b"[DONE]"]
        if kind == "error":
            return [payload]  # an in-band error: the stream fails with it
        return []  # ping, content_block_stop
