"""Gemini as a channel: Chat Completions requests sent as `generateContent`, answers read back.

A channel of type `gemini` calls Google's Gemini API natively
(`<base>/models/<model>:generateContent`, `:streamGenerateContent?alt=sse`, the key as
`x-goog-api-key`); the gateway's calls stay in the Chat Completions form everywhere else:

- `to_gemini_body`: system messages as `systemInstruction`, turns as `contents` (`model` for the
  assistant; text, inline images and files, function calls, and tool results as
  `functionResponse` parts named after the call they answer); tools as `functionDeclarations`,
  `tool_choice` as `functionCallingConfig`; `max_tokens`, `temperature`, `top_p`, `stop`,
  JSON `response_format` and `reasoning_effort` in `generationConfig`;
- `to_chat_completion`: an answer as a chat completion (thought parts as `reasoning_content`,
  function calls as `tool_calls` with ids made up, as Gemini gives none; usage with thoughts and
  cached tokens);
- `ChatChunks`: the SSE stream as chat chunks; Gemini ends a stream by closing it, so the usage
  chunk and `[DONE]` follow once a finish reason has come.
"""

from __future__ import annotations

from itertools import count
from typing import Any

import orjson

from app.gateway.sse import SSEDecoder
from app.gateway.wire_values import as_object, data_url, non_negative

FINISH = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
}
THINKING_BUDGET = {"minimal": 512, "low": 1024, "medium": 8192, "high": 24576}


# ── request ──────────────────────────────────────────────────────────────────────────────────
def _media(url: str) -> dict[str, Any]:
    found = data_url(url)
    if found:
        return {"inlineData": {"mimeType": found[0], "data": found[1]}}
    return {"fileData": {"fileUri": url}}


def _parts(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"text": content}] if content else []
    parts: list[dict[str, Any]] = []
    for part in content if isinstance(content, list) else []:
        if not isinstance(part, dict):
            continue
        kind = part.get("type")
        if kind == "text":
            parts.append({"text": str(part.get("text") or "")})
        elif kind == "image_url":
            image = part.get("image_url")
            url = image.get("url") if isinstance(image, dict) else image
            if isinstance(url, str):
                parts.append(_media(url))
        elif kind == "file":
            data = as_object(part.get("file")).get("file_data")
            if isinstance(data, str):
                parts.append(_media(data))
    return parts


def _text(content: Any) -> str:
    return "".join(part.get("text", "") for part in _parts(content))


def _args(text: Any) -> dict[str, Any]:
    try:
        value = orjson.loads(text or "{}")
    except (orjson.JSONDecodeError, TypeError):
        return {}
    return value if isinstance(value, dict) else {"value": value}


def _contents(messages: list[Any]) -> tuple[list[str], list[dict[str, Any]]]:
    system: list[str] = []
    contents: list[dict[str, Any]] = []
    names: dict[str, str] = {}  # tool call id -> function name (a result names its function)

    def add(role: str, parts: list[dict[str, Any]]) -> None:
        if not parts:
            return
        if contents and contents[-1]["role"] == role:
            contents[-1]["parts"].extend(parts)
        else:
            contents.append({"role": role, "parts": parts})

    for message in messages:
        if not isinstance(message, dict):
            continue
        role = message.get("role")
        if role in ("system", "developer"):
            system.append(_text(message.get("content")))
        elif role == "user":
            add("user", _parts(message.get("content")))
        elif role == "assistant":
            parts = _parts(message.get("content"))
            for call in message.get("tool_calls") or []:
                function = as_object(as_object(call).get("function"))
                name = str(function.get("name") or "")
                names[str(as_object(call).get("id") or "")] = name
                parts.append(
                    {"functionCall": {"name": name, "args": _args(function.get("arguments"))}}
                )
            add("model", parts)
        elif role in ("tool", "function"):
            name = names.get(
                str(message.get("tool_call_id") or ""), str(message.get("name") or "tool")
            )
            result = {
                "functionResponse": {
                    "name": name,
                    "response": {"content": _text(message.get("content"))},
                }
            }
            add("user", [result])
    return system, contents


def _tool_config(choice: Any) -> dict[str, Any] | None:
    if choice == "auto":
        return {"functionCallingConfig": {"mode": "AUTO"}}
    if choice == "required":
        return {"functionCallingConfig": {"mode": "ANY"}}
    if choice == "none":
        return {"functionCallingConfig": {"mode": "NONE"}}
    name = as_object(as_object(choice).get("function")).get("name")
    if name:
        return {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": [name]}}
    return None


def to_gemini_body(chat: dict[str, Any]) -> bytes:
    system, contents = _contents(chat.get("messages") or [])
    body: dict[str, Any] = {"contents": contents}
    if any(system):
        body["systemInstruction"] = {"parts": [{"text": "\n\n".join(s for s in system if s)}]}
    config: dict[str, Any] = {}
    limit = chat.get("max_completion_tokens") or chat.get("max_tokens")
    if limit:
        config["maxOutputTokens"] = limit
    if chat.get("temperature") is not None:
        config["temperature"] = chat["temperature"]
    if chat.get("top_p") is not None:
        config["topP"] = chat["top_p"]
    stop = chat.get("stop")
    if stop:
        config["stopSequences"] = [stop] if isinstance(stop, str) else list(stop)
    response_format = as_object(chat.get("response_format"))
    if response_format.get("type") in ("json_object", "json_schema"):
        config["responseMimeType"] = "application/json"
        schema = as_object(response_format.get("json_schema")).get("schema")
        if isinstance(schema, dict):
            config["responseJsonSchema"] = schema
    budget = THINKING_BUDGET.get(str(chat.get("reasoning_effort")))
    if budget is not None:
        config["thinkingConfig"] = {"thinkingBudget": budget, "includeThoughts": True}
    if config:
        body["generationConfig"] = config
    declarations = []
    for tool in chat.get("tools") or []:
        function = as_object(as_object(tool).get("function"))
        if function.get("name"):
            declaration: dict[str, Any] = {"name": function["name"]}
            if function.get("description"):
                declaration["description"] = function["description"]
            if function.get("parameters"):
                declaration["parameters"] = function["parameters"]
            declarations.append(declaration)
    if declarations:
        body["tools"] = [{"functionDeclarations": declarations}]
        config_for_tools = _tool_config(chat.get("tool_choice"))
        if config_for_tools is not None:
            body["toolConfig"] = config_for_tools
    return orjson.dumps(body)


def url_for(base_url: str, upstream_model: str, stream: bool) -> str:
    action = "streamGenerateContent?alt=sse" if stream else "generateContent"
    model = upstream_model.removeprefix("models/")
    return f"{base_url}/models/{model}:{action}"


# ── answers ──────────────────────────────────────────────────────────────────────────────────
def _usage(metadata: Any) -> dict[str, Any]:
    metadata = as_object(metadata)
    prompt = non_negative(metadata.get("promptTokenCount"))
    thoughts = non_negative(metadata.get("thoughtsTokenCount"))
    completion = non_negative(metadata.get("candidatesTokenCount")) + thoughts
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {
            "cached_tokens": non_negative(metadata.get("cachedContentTokenCount"))
        },
        "completion_tokens_details": {"reasoning_tokens": thoughts},
    }


class _Reader:
    """Reads candidates' parts into chat deltas; names the function calls it sees."""

    def __init__(self) -> None:
        self._ids = count(1)
        self.calls = 0

    def delta(self, candidate: dict[str, Any]) -> dict[str, Any]:
        text: list[str] = []
        thoughts: list[str] = []
        calls: list[dict[str, Any]] = []
        for part in as_object(candidate.get("content")).get("parts") or []:
            part = as_object(part)
            if isinstance(part.get("text"), str):
                (thoughts if part.get("thought") else text).append(part["text"])
            elif part.get("functionCall"):
                call = as_object(part["functionCall"])
                calls.append(
                    {
                        "index": self.calls,
                        "id": str(call.get("id") or f"call_gemini_{next(self._ids)}"),
                        "type": "function",
                        "function": {
                            "name": str(call.get("name") or ""),
                            "arguments": orjson.dumps(call.get("args") or {}).decode(),
                        },
                    }
                )
                self.calls += 1
        delta: dict[str, Any] = {}
        if thoughts:
            delta["reasoning_content"] = "".join(thoughts)
        if text:
            delta["content"] = "".join(text)
        if calls:
            delta["tool_calls"] = calls
        return delta


def _finish(candidate: dict[str, Any], calls: bool) -> str | None:
    reason = candidate.get("finishReason")
    if not reason:
        return None
    return "tool_calls" if calls and reason == "STOP" else FINISH.get(str(reason), "stop")


def to_chat_completion(answer: dict[str, Any], model: str) -> dict[str, Any]:
    candidates = answer.get("candidates") or [{}]
    candidate = as_object(candidates[0])
    delta = _Reader().delta(candidate)
    message: dict[str, Any] = {"role": "assistant", "content": delta.get("content")}
    if "reasoning_content" in delta:
        message["reasoning_content"] = delta["reasoning_content"]
    if "tool_calls" in delta:
        message["tool_calls"] = [
            {k: v for k, v in c.items() if k != "index"} for c in delta["tool_calls"]
        ]
    return {
        "id": str(answer.get("responseId") or ""),
        "object": "chat.completion",
        "model": answer.get("modelVersion") or model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": _finish(candidate, "tool_calls" in delta) or "stop",
            }
        ],
        "usage": _usage(answer.get("usageMetadata")),
    }


class ChatChunks:
    """Gemini's SSE stream, read as chat chunk payloads (the SSE decoder's interface)."""

    def __init__(self, model: str) -> None:
        self._sse = SSEDecoder()
        self._reader = _Reader()
        self._base: dict[str, Any] = {"object": "chat.completion.chunk", "model": model}
        self._usage: Any = None
        self._finished = False
        self._started = False

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
        if self._finished:  # the stream ended with a finish reason: a clean end
            usage = {**self._base, "choices": [], "usage": _usage(self._usage)}
            out += [orjson.dumps(usage), b"[DONE]"]
        return out

    def _event(self, payload: bytes) -> list[bytes]:
        try:
            answer = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return [payload]
        if not isinstance(answer, dict):
            return [payload]
        if "error" in answer:
            return [payload]  # an in-band error
        out: list[bytes] = []
        if not self._started:
            self._started = True
            if answer.get("responseId"):
                self._base["id"] = answer["responseId"]
            out.append(self._chunk({"role": "assistant", "content": ""}))
        if answer.get("usageMetadata"):
            self._usage = answer["usageMetadata"]
        for candidate in answer.get("candidates") or []:
            candidate = as_object(candidate)
            before = self._reader.calls
            delta = self._reader.delta(candidate)
            finish = _finish(candidate, self._reader.calls > 0 or before > 0)
            if delta or finish:
                out.append(self._chunk(delta, finish))
            if finish:
                self._finished = True
            break  # the first candidate only (n=1)
        return out
