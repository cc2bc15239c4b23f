"""Anthropic's Messages API over Chat Completions: requests in, answers and stream events out.

`/v1/messages` accepts what the `anthropic` SDK and Claude-style agents send and calls the
channel in the Chat Completions format, which every channel speaks:

- request: `system` (text or text blocks) becomes a system message; text, image (base64 or URL)
  and document (PDF) blocks become content parts; an assistant's `tool_use` blocks its
  `tool_calls`, a user's `tool_result` blocks `tool` messages (placed first, as Chat Completions
  wants them right after the call); `tools`, `tool_choice`, `stop_sequences`, `metadata.user_id`,
  `thinking` (as `reasoning_effort`) map across; thinking blocks of earlier turns are dropped
  (no Chat Completions provider takes them back);
- answer: reasoning becomes a `thinking` block, text a `text` block, tool calls `tool_use` blocks;
  finish reasons and usage (cached prompt tokens apart, as Anthropic counts them) map back;
- stream (`MessagesStream`): `message_start`, then for each block `content_block_start`,
  `content_block_delta` (`thinking_delta`, `text_delta`, `input_json_delta`),
  `content_block_stop`, then `message_delta` (stop reason, usage) and `message_stop`; a failure
  part-way is an `error` event;
- errors use Anthropic's envelope (`{"type": "error", "error": {"type", "message"}}`).
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from app.core.errors import BadRequestError
from app.core.errors import anthropic_error_body as error_body
from app.gateway.request import ModelRequest, Native, body_and_model
from app.gateway.wire_values import new_id, non_negative

MAX_MESSAGES = 10_000
FINISH_TO_STOP = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}


def _invalid(message: str, param: str | None = None) -> BadRequestError:
    return BadRequestError(message, code="invalid_request_error", param=param)


# ── request ──────────────────────────────────────────────────────────────────────────────────
def _text_of(blocks: Any, where: str) -> str:
    """A string, or text blocks joined (other blocks refused)."""
    if isinstance(blocks, str):
        return blocks
    if not isinstance(blocks, list):
        raise _invalid(f"{where} must be a string or an array of text blocks", where)
    texts = []
    for index, block in enumerate(blocks):
        if not isinstance(block, dict) or block.get("type") != "text":
            raise _invalid(f"{where}[{index}] must be a text block", where)
        texts.append(str(block.get("text") or ""))
    return "\n\n".join(texts)


def _media_part(block: dict[str, Any], where: str) -> dict[str, Any]:
    source = block.get("source")
    if not isinstance(source, dict):
        raise _invalid(f"{where}.source must be an object", where)
    kind = source.get("type")
    if kind == "base64":
        media = source.get("media_type")
        data = source.get("data")
        if not isinstance(media, str) or not isinstance(data, str):
            raise _invalid(f"{where}.source needs media_type and data", where)
        url = f"data:{media};base64,{data}"
    elif kind == "url" and isinstance(source.get("url"), str):
        url = source["url"]
        media = ""
    else:
        raise _invalid(f"{where}.source.type must be base64 or url", where)
    if block["type"] == "image":
        return {"type": "image_url", "image_url": {"url": url}}
    if media != "application/pdf" and kind == "base64":
        raise _invalid(f"{where}: only PDF documents can be sent", where)
    if kind == "url":
        raise _invalid(f"{where}: send documents as base64 data", where)
    return {"type": "file", "file": {"file_data": url, "filename": "document.pdf"}}


def _content_parts(blocks: list[Any], where: str) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    for index, block in enumerate(blocks):
        at = f"{where}[{index}]"
        kind = block.get("type")
        if kind == "text":
            parts.append({"type": "text", "text": str(block.get("text") or "")})
        elif kind in ("image", "document"):
            parts.append(_media_part(block, at))
        else:
            raise _invalid(f"{at}: a block of type {kind!r} cannot be sent here", at)
    return parts


def _simplify(parts: list[dict[str, Any]]) -> str | list[dict[str, Any]]:
    """Text-only content as one string (every provider takes that)."""
    if all(part["type"] == "text" for part in parts):
        return "".join(part["text"] for part in parts)
    return parts


def _user_messages(content: Any, where: str) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"role": "user", "content": content}]
    tools: list[dict[str, Any]] = []
    rest: list[Any] = []
    for index, block in enumerate(content):
        if block.get("type") != "tool_result":
            rest.append(block)
            continue
        at = f"{where}[{index}]"
        tool_id = block.get("tool_use_id")
        if not isinstance(tool_id, str) or not tool_id:
            raise _invalid(f"{at}.tool_use_id is required", at)
        result = block.get("content", "")
        if isinstance(result, list):
            parts = _content_parts(result, f"{at}.content")
            text = "".join(p["text"] for p in parts if p["type"] == "text")
            rest.extend(
                {"type": "image", "source": b["source"]} for b in result if b.get("type") == "image"
            )
        else:
            text = str(result)
        if block.get("is_error"):
            text = f"Error: {text}"
        tools.append({"role": "tool", "tool_call_id": tool_id, "content": text})
    messages = tools
    if rest:
        messages.append({"role": "user", "content": _simplify(_content_parts(rest, where))})
    return messages


def _assistant_message(content: Any, where: str) -> dict[str, Any]:
    if isinstance(content, str):
        return {"role": "assistant", "content": content}
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for index, block in enumerate(content):
        kind = block.get("type")
        if kind == "text":
            texts.append(str(block.get("text") or ""))
        elif kind == "tool_use":
            at = f"{where}[{index}]"
            if not isinstance(block.get("id"), str) or not isinstance(block.get("name"), str):
                raise _invalid(f"{at} needs an id and a name", at)
            calls.append(
                {
                    "id": block["id"],
                    "type": "function",
                    "function": {
                        "name": block["name"],
                        "arguments": orjson.dumps(block.get("input") or {}).decode(),
                    },
                }
            )
        elif kind in ("thinking", "redacted_thinking"):
            continue  # earlier reasoning is not sent back
        else:
            raise _invalid(f"{where}[{index}]: a block of type {kind!r} cannot be sent here")
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) or None}
    if calls:
        message["tool_calls"] = calls
    return message


def _tool(tool: Any, index: int) -> dict[str, Any]:
    where = f"tools[{index}]"
    if not isinstance(tool, dict) or not isinstance(tool.get("name"), str):
        raise _invalid(f"{where} needs a name", where)
    if tool.get("type") not in (None, "custom"):
        raise _invalid(f"{where}: server tools ({tool.get('type')}) are not available here", where)
    function: dict[str, Any] = {
        "name": tool["name"],
        "parameters": tool.get("input_schema") or {"type": "object", "properties": {}},
    }
    if tool.get("description"):
        function["description"] = tool["description"]
    return {"type": "function", "function": function}


def _tool_choice(choice: Any) -> Any:
    if not isinstance(choice, dict):
        raise _invalid("tool_choice must be an object", "tool_choice")
    kind = choice.get("type")
    if kind == "auto":
        return "auto"
    if kind == "any":
        return "required"
    if kind == "none":
        return "none"
    if kind == "tool" and isinstance(choice.get("name"), str):
        return {"type": "function", "function": {"name": choice["name"]}}
    raise _invalid("tool_choice.type must be auto, any, tool (with a name) or none", "tool_choice")


def _effort(thinking: Any) -> str | None:
    if not isinstance(thinking, dict) or thinking.get("type") != "enabled":
        return None
    budget = thinking.get("budget_tokens")
    if not isinstance(budget, int) or isinstance(budget, bool) or budget < 1:
        raise _invalid("thinking.budget_tokens must be a positive integer", "thinking")
    return "low" if budget < 4096 else "medium" if budget < 16384 else "high"


_BETAS = re.compile(r"[A-Za-z0-9._-]+(?:\s*,\s*[A-Za-z0-9._-]+)*")
MAX_BETA_LENGTH = 1000


def beta_headers(values: list[str]) -> dict[str, str]:
    """The client's `anthropic-beta` features (its header lines joined), for an Anthropic
    channel: comma-separated names, nothing else."""
    joined = ", ".join(value.strip() for value in values if value.strip())
    if not joined:
        return {}
    if len(joined) > MAX_BETA_LENGTH or not _BETAS.fullmatch(joined):
        raise _invalid("anthropic-beta must be a comma-separated list of beta feature names")
    return {"anthropic-beta": joined}


def parse_messages_request(
    raw: bytes, *, counting: bool = False, betas: list[str] | None = None
) -> ModelRequest:
    """An Anthropic Messages request: as it is for an Anthropic channel, translated to Chat
    Completions for the others (`counting`: for count_tokens, where max_tokens is not needed).
    What only translation refuses (server tools, citations sources …) leaves the request for
    Anthropic channels (`Native.untranslatable`)."""
    body, model = body_and_model(raw)
    headers = beta_headers(betas or [])
    max_tokens = body.get("max_tokens")
    if counting and max_tokens is None:
        max_tokens = 1
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
        raise _invalid("max_tokens: a positive integer is required", "max_tokens")
    given = body.get("messages")
    if not isinstance(given, list) or not given:
        raise _invalid("messages: a non-empty array is required", "messages")
    if len(given) > MAX_MESSAGES:
        raise _invalid(f"messages: at most {MAX_MESSAGES}", "messages")
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise _invalid("stream must be a boolean", "stream")
    untranslatable = None
    try:
        chat = _chat_request(body, model, max_tokens, given)
    except BadRequestError as error:
        if counting:
            raise
        chat, untranslatable = {"model": model, "messages": []}, error
    return ModelRequest(
        body=chat,
        model=model,
        stream=stream,
        include_usage=True,
        messages=chat["messages"],
        endpoint="/chat/completions",
        native=Native("/messages", body, untranslatable, headers=headers),
    )


def _chat_request(
    body: dict[str, Any], model: str, max_tokens: int, given: list[Any]
) -> dict[str, Any]:
    messages: list[dict[str, Any]] = []
    if body.get("system") not in (None, "", []):
        messages.append({"role": "system", "content": _text_of(body["system"], "system")})
    for index, message in enumerate(given):
        where = f"messages[{index}]"
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
            raise _invalid(f"{where}.role must be user or assistant", f"{where}.role")
        content = message.get("content")
        if not isinstance(content, str) and not (
            isinstance(content, list) and all(isinstance(b, dict) for b in content)
        ):
            raise _invalid(f"{where}.content must be a string or an array of blocks", where)
        if message["role"] == "user":
            messages.extend(_user_messages(content, f"{where}.content"))
        else:
            messages.append(_assistant_message(content, f"{where}.content"))
    chat: dict[str, Any] = {"model": model, "messages": messages, "max_tokens": max_tokens}
    for name in ("temperature", "top_p"):
        if body.get(name) is not None:
            chat[name] = body[name]
    if body.get("stop_sequences"):
        chat["stop"] = body["stop_sequences"]
    tools = body.get("tools")
    if tools:
        if not isinstance(tools, list):
            raise _invalid("tools must be an array", "tools")
        chat["tools"] = [_tool(tool, index) for index, tool in enumerate(tools)]
    if body.get("tool_choice") is not None:
        choice = body["tool_choice"]
        chat["tool_choice"] = _tool_choice(choice)
        if isinstance(choice, dict) and choice.get("disable_parallel_tool_use") and tools:
            chat["parallel_tool_calls"] = False
    user = (
        (body.get("metadata") or {}).get("user_id")
        if isinstance(body.get("metadata"), dict)
        else None
    )
    if isinstance(user, str) and user:
        chat["user"] = user
    effort = _effort(body.get("thinking"))
    if effort is not None:
        chat["reasoning_effort"] = effort
    if body.get("stream"):
        chat["stream"] = True
    return chat


# ── answer ───────────────────────────────────────────────────────────────────────────────────
def _usage(usage: Any) -> dict[str, int]:
    usage = usage if isinstance(usage, dict) else {}
    prompt = non_negative(usage.get("prompt_tokens"))
    details = usage.get("prompt_tokens_details")
    cached = non_negative(details.get("cached_tokens")) if isinstance(details, dict) else 0
    return {
        "input_tokens": max(prompt - cached, 0),
        "output_tokens": non_negative(usage.get("completion_tokens")),
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": cached,
    }


def _tool_input(arguments: Any) -> Any:
    if isinstance(arguments, dict):
        return arguments
    try:
        parsed = orjson.loads(arguments or "{}")
    except (orjson.JSONDecodeError, TypeError):
        return {"arguments": arguments}
    return parsed if isinstance(parsed, dict) else {"value": parsed}


def to_message(chat: dict[str, Any], model: str) -> dict[str, Any]:
    """A whole Chat Completions answer as an Anthropic message."""
    choices = chat.get("choices") or [{}]
    choice = choices[0] if isinstance(choices[0], dict) else {}
    given = choice.get("message")
    message: dict[str, Any] = given if isinstance(given, dict) else {}
    content: list[dict[str, Any]] = []
    reasoning = message.get("reasoning_content") or message.get("reasoning")
    if isinstance(reasoning, str) and reasoning:
        content.append({"type": "thinking", "thinking": reasoning, "signature": ""})
    text = message.get("content")
    if isinstance(text, str) and text:
        content.append({"type": "text", "text": text})
    for call in message.get("tool_calls") or []:
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict):
            content.append(
                {
                    "type": "tool_use",
                    "id": str(call.get("id") or f"toolu_{len(content)}"),
                    "name": str(function.get("name") or ""),
                    "input": _tool_input(function.get("arguments")),
                }
            )
    return {
        "id": new_id("msg"),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": FINISH_TO_STOP.get(str(choice.get("finish_reason")), "end_turn"),
        "stop_sequence": None,
        "usage": _usage(chat.get("usage")),
    }


# ── stream ───────────────────────────────────────────────────────────────────────────────────
def event(name: str, payload: dict[str, Any]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"


class MessagesStream:
    """Chat Completions chunks in, Anthropic stream events out (one instance per stream)."""

    def __init__(self, model: str) -> None:
        self._model = model
        self._started = False
        self._block = -1  # index of the open block (-1: none yet)
        self._open: str | None = None  # its kind: thinking, text, tool
        self._tools: dict[int, int] = {}  # the chunk's tool-call index -> block index
        self._stop = "end_turn"
        self._usage: dict[str, int] = _usage(None)

    def start(self) -> bytes:
        self._started = True
        message: dict[str, Any] = {
            "id": new_id("msg"),
            "type": "message",
            "role": "assistant",
            "model": self._model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 0, "output_tokens": 0},
        }
        return event("message_start", {"type": "message_start", "message": message})

    def _close(self, out: list[bytes]) -> None:
        if self._open is not None:
            out.append(
                event("content_block_stop", {"type": "content_block_stop", "index": self._block})
            )
            self._open = None

    def _begin(self, out: list[bytes], kind: str, block: dict[str, Any]) -> None:
        self._close(out)
        self._block += 1
        self._open = kind
        out.append(
            event(
                "content_block_start",
                {"type": "content_block_start", "index": self._block, "content_block": block},
            )
        )

    def _delta(self, out: list[bytes], delta: dict[str, Any]) -> None:
        out.append(
            event(
                "content_block_delta",
                {"type": "content_block_delta", "index": self._block, "delta": delta},
            )
        )

    def feed(self, chunk: dict[str, Any]) -> list[bytes]:
        """The events for one chat chunk, as parsed (none for a chunk that says nothing)."""
        out: list[bytes] = []
        if not self._started:
            out.append(self.start())
        if chunk.get("usage"):
            self._usage = _usage(chunk["usage"])
        for choice in chunk.get("choices") or []:
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            given = choice.get("delta")
            delta: dict[str, Any] = given if isinstance(given, dict) else {}
            reasoning = delta.get("reasoning_content") or delta.get("reasoning")
            if isinstance(reasoning, str) and reasoning:
                if self._open != "thinking":
                    self._begin(
                        out, "thinking", {"type": "thinking", "thinking": "", "signature": ""}
                    )
                self._delta(out, {"type": "thinking_delta", "thinking": reasoning})
            text = delta.get("content")
            if isinstance(text, str) and text:
                if self._open != "text":
                    self._begin(out, "text", {"type": "text", "text": ""})
                self._delta(out, {"type": "text_delta", "text": text})
            for call in delta.get("tool_calls") or []:
                self._tool_call(out, call)
            finish = choice.get("finish_reason")
            if finish:
                self._stop = FINISH_TO_STOP.get(str(finish), "end_turn")
        return out

    def _tool_call(self, out: list[bytes], call: Any) -> None:
        if not isinstance(call, dict):
            return
        index = call.get("index", 0)
        given = call.get("function")
        function: dict[str, Any] = given if isinstance(given, dict) else {}
        if index not in self._tools or (call.get("id") and self._open != "tool"):
            block = {
                "type": "tool_use",
                "id": str(call.get("id") or f"toolu_{self._block + 1}"),
                "name": str(function.get("name") or ""),
                "input": {},
            }
            self._begin(out, "tool", block)
            self._tools[index] = self._block
        elif self._tools[index] != self._block:
            return  # arguments for a call already closed: providers do not interleave
        arguments = function.get("arguments")
        if isinstance(arguments, str) and arguments:
            self._delta(out, {"type": "input_json_delta", "partial_json": arguments})

    def finish(self) -> list[bytes]:
        out: list[bytes] = []
        if not self._started:
            out.append(self.start())
        self._close(out)
        out.append(
            event(
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": self._stop, "stop_sequence": None},
                    "usage": self._usage,
                },
            )
        )
        out.append(event("message_stop", {"type": "message_stop"}))
        return out

    def failed(self, status: int, message: str) -> list[bytes]:
        out: list[bytes] = []
        if not self._started:
            out.append(self.start())
        self._close(out)
        out.append(event("error", error_body(status, message)))
        return out
