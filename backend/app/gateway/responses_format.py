"""OpenAI's Responses API over Chat Completions: requests in, response objects and events out.

- request: `instructions` becomes the system message; `input` (a string or items: messages with
  `input_text` / `input_image` / `input_file` parts, earlier `output_text` messages,
  `function_call` and `function_call_output` items) becomes chat messages, after those of the
  conversation `previous_response_id` names; function `tools`, `tool_choice`, `text.format`
  (JSON schema, JSON object), `reasoning.effort`, `max_output_tokens`, `temperature`, `top_p`,
  `parallel_tool_calls` and `user` map across. Built-in tools (web search, files …) are refused.
- answer: reasoning becomes a `reasoning` item (its text as a summary), text a `message` item with
  `output_text`, tool calls `function_call` items; usage as `input_tokens` / `output_tokens` with
  their details.
- stream (`ResponsesStream`): `response.created`, `response.in_progress`, then per item
  `response.output_item.added`, its deltas (`response.reasoning_summary_text.delta`,
  `response.output_text.delta`, `response.function_call_arguments.delta`) and their `.done`
  events, `response.output_item.done`, and `response.completed` with the whole response (or
  `response.failed`). Every event has a `sequence_number`.
"""

from __future__ import annotations

import time
from itertools import count
from typing import Any

import orjson

from app.core.errors import BadRequestError
from app.gateway.request import ModelRequest, Native, body_and_model
from app.gateway.wire_values import new_id, non_negative

MAX_ITEMS = 10_000


def _invalid(message: str, param: str | None = None) -> BadRequestError:
    return BadRequestError(message, code="invalid_request_error", param=param)


# ── request ──────────────────────────────────────────────────────────────────────────────────
def _part(part: Any, where: str) -> dict[str, Any]:
    if not isinstance(part, dict):
        raise _invalid(f"{where} must be an object", where)
    kind = part.get("type")
    if kind in ("input_text", "output_text", "text"):
        return {"type": "text", "text": str(part.get("text") or "")}
    if kind == "input_image":
        url = part.get("image_url")
        if not isinstance(url, str) or not url:
            raise _invalid(f"{where}.image_url is required (file ids are not available)", where)
        image: dict[str, Any] = {"url": url}
        if part.get("detail") in ("low", "high", "auto"):
            image["detail"] = part["detail"]
        return {"type": "image_url", "image_url": image}
    if kind == "input_file":
        data = part.get("file_data")
        if not isinstance(data, str) or not data:
            raise _invalid(f"{where}.file_data is required (file ids are not available)", where)
        return {
            "type": "file",
            "file": {"file_data": data, "filename": str(part.get("filename") or "file")},
        }
    raise _invalid(f"{where}: a part of type {kind!r} cannot be sent", where)


def _content(content: Any, where: str, strict: bool) -> Any:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise _invalid(f"{where} must be a string or an array of parts", where)
    parts = []
    for index, part in enumerate(content):
        try:
            parts.append(_part(part, f"{where}[{index}]"))
        except BadRequestError:
            if strict:
                raise
    if all(part["type"] == "text" for part in parts):
        return "".join(part["text"] for part in parts)
    return parts


def input_items(given: Any) -> list[Any]:
    """`input` as a list of items (a string is one user message)."""
    if isinstance(given, str):
        return [{"role": "user", "content": given}]
    if not isinstance(given, list) or not given:
        raise _invalid("input must be a string or a non-empty array of items", "input")
    if len(given) > MAX_ITEMS:
        raise _invalid(f"input may hold at most {MAX_ITEMS} items", "input")
    return given


def input_messages(items: list[Any], *, strict: bool = True) -> list[dict[str, Any]]:
    """Input items as chat messages. Not `strict` (an earlier turn's items): what chat cannot
    carry (built-in tool calls, refusals, reasoning) is left out instead of refused."""
    messages: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        where = f"input[{index}]"
        if not isinstance(item, dict):
            raise _invalid(f"{where} must be an object", where)
        kind = item.get("type", "message")
        if kind == "message":
            role = item.get("role")
            if role not in ("user", "assistant", "system", "developer"):
                raise _invalid(f"{where}.role must be user, assistant, system or developer", where)
            messages.append(
                {
                    "role": "system" if role == "developer" else role,
                    "content": _content(item.get("content"), f"{where}.content", strict),
                }
            )
        elif kind == "function_call":
            call: dict[str, Any] = {
                "id": str(item.get("call_id") or ""),
                "type": "function",
                "function": {
                    "name": str(item.get("name") or ""),
                    "arguments": str(item.get("arguments") or "{}"),
                },
            }
            if not call["id"] or not call["function"]["name"]:
                raise _invalid(f"{where} needs a call_id and a name", where)
            last = messages[-1] if messages else None
            if last is not None and last["role"] == "assistant" and "tool_calls" in last:
                last["tool_calls"].append(call)  # calls made in one turn stay together
            else:
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output":
            call_id = item.get("call_id")
            if not isinstance(call_id, str) or not call_id:
                raise _invalid(f"{where}.call_id is required", where)
            output = item.get("output")
            text = output if isinstance(output, str) else orjson.dumps(output).decode()
            messages.append({"role": "tool", "tool_call_id": call_id, "content": text})
        elif kind == "reasoning" or not strict:
            continue  # earlier reasoning is not sent back
        else:
            raise _invalid(f"{where}: an item of type {kind!r} cannot be sent", where)
    return messages


def _tool(tool: Any, index: int) -> dict[str, Any]:
    where = f"tools[{index}]"
    if not isinstance(tool, dict) or tool.get("type") != "function":
        kind = tool.get("type") if isinstance(tool, dict) else None
        raise _invalid(f"{where}: built-in tools ({kind}) are not available; use functions", where)
    if not isinstance(tool.get("name"), str):
        raise _invalid(f"{where}.name is required", where)
    function: dict[str, Any] = {
        "name": tool["name"],
        "parameters": tool.get("parameters") or {"type": "object", "properties": {}},
    }
    if tool.get("description"):
        function["description"] = tool["description"]
    if tool.get("strict") is not None:
        function["strict"] = bool(tool["strict"])
    return {"type": "function", "function": function}


def _tool_choice(choice: Any) -> Any:
    if choice in ("auto", "none", "required"):
        return choice
    if isinstance(choice, dict) and choice.get("type") == "function" and choice.get("name"):
        return {"type": "function", "function": {"name": choice["name"]}}
    raise _invalid("tool_choice must be auto, none, required or a function", "tool_choice")


def _response_format(text: Any) -> dict[str, Any] | None:
    if not isinstance(text, dict) or not isinstance(text.get("format"), dict):
        return None
    fmt = text["format"]
    kind = fmt.get("type")
    if kind in (None, "text"):
        return None
    if kind == "json_object":
        return {"type": "json_object"}
    if kind == "json_schema":
        schema: dict[str, Any] = {"name": str(fmt.get("name") or "answer")}
        if fmt.get("schema") is not None:
            schema["schema"] = fmt["schema"]
        if fmt.get("strict") is not None:
            schema["strict"] = bool(fmt["strict"])
        if fmt.get("description"):
            schema["description"] = fmt["description"]
        return {"type": "json_schema", "json_schema": schema}
    raise _invalid("text.format.type must be text, json_object or json_schema", "text")


def parse_responses_request(raw: bytes) -> tuple[dict[str, Any], ModelRequest]:
    """(the request as given, the request for the channels: as it is for one that speaks the
    Responses API, translated to Chat Completions for the others — without the earlier
    conversation, which `continue_conversation` puts in front once `previous_response_id` has
    been looked up). What only translation refuses (built-in tools, file ids …) leaves the request
    for channels that speak the Responses API (`Native.untranslatable`)."""
    body, model = body_and_model(raw)
    items = input_items(body.get("input"))
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise _invalid("'stream' must be a boolean", "stream")
    previous = body.get("previous_response_id")
    if previous is not None and (not isinstance(previous, str) or not previous):
        raise _invalid("previous_response_id must be a string", "previous_response_id")
    limit = body.get("max_output_tokens")
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 1):
        raise _invalid("max_output_tokens must be a positive integer", "max_output_tokens")
    instructions = body.get("instructions")
    if instructions is not None and not isinstance(instructions, str):
        raise _invalid("instructions must be a string", "instructions")
    if body.get("background") is True:
        raise _invalid(
            "background responses are not available through the gateway; use stream instead",
            "background",
        )
    untranslatable = None
    try:
        chat, messages = _chat_request(body, model, items)
    except BadRequestError as error:
        untranslatable = error
        chat, messages = {"model": model}, _readable(items)
    request = ModelRequest(
        body=chat,
        model=model,
        stream=stream,
        include_usage=True,
        messages=messages,
        endpoint="/chat/completions",
        native=Native("/responses", body, untranslatable),
    )
    return body, request


# Fields naming state only a Responses upstream holds: a request with one cannot be translated.
UPSTREAM_STATE = ("conversation", "prompt")


def _readable(items: list[Any]) -> list[dict[str, Any]]:
    """What chat messages can be read from `items` (for estimating usage), or none."""
    try:
        return input_messages(items, strict=False)
    except BadRequestError:
        return []


def _chat_request(
    body: dict[str, Any], model: str, items: list[Any]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    for name in UPSTREAM_STATE:
        if body.get(name) is not None:
            raise _invalid(f"{name} needs a channel that speaks the Responses API", name)
    messages = input_messages(items)
    chat: dict[str, Any] = {"model": model}
    if body.get("max_output_tokens") is not None:
        chat["max_tokens"] = body["max_output_tokens"]
    for name in ("temperature", "top_p", "parallel_tool_calls", "user"):
        if body.get(name) is not None:
            chat[name] = body[name]
    tools = body.get("tools")
    if tools:
        if not isinstance(tools, list):
            raise _invalid("tools must be an array", "tools")
        chat["tools"] = [_tool(tool, index) for index, tool in enumerate(tools)]
    if body.get("tool_choice") is not None:
        chat["tool_choice"] = _tool_choice(body["tool_choice"])
    response_format = _response_format(body.get("text"))
    if response_format is not None:
        chat["response_format"] = response_format
    reasoning = body.get("reasoning")
    if isinstance(reasoning, dict) and reasoning.get("effort") in (
        "minimal",
        "low",
        "medium",
        "high",
    ):
        chat["reasoning_effort"] = reasoning["effort"]
    if body.get("stream"):
        chat["stream"] = True
    return chat, messages


def continue_conversation(
    request: ModelRequest,
    body: dict[str, Any],
    earlier_items: list[Any] | None,
    earlier_messages: list[Any] | None = None,
) -> None:
    """Put the instructions and the earlier conversation in front of this turn's input: the
    earlier items as they are for a channel speaking the Responses API, as chat messages for the
    others. `earlier_messages`: a conversation kept only as chat messages (by an older version),
    which can go to the translated path only."""
    native = request.native
    assert native is not None
    if native.untranslatable is None:
        try:
            earlier = (
                input_messages(earlier_items, strict=False)
                if earlier_items is not None
                else earlier_messages or []
            )
        except BadRequestError as error:  # an earlier answer chat cannot carry
            native.untranslatable, earlier = error, []
    if native.untranslatable is None:
        messages = [m for m in earlier if m.get("role") != "system"]
        if body.get("instructions"):
            messages.insert(0, {"role": "system", "content": body["instructions"]})
        request.messages = messages + request.messages
        request.body["messages"] = request.messages
    if earlier_messages is not None and earlier_items is None:
        if native.untranslatable is not None:
            raise native.untranslatable
        request.native = None
        return
    if earlier_items is not None:  # the gateway keeps the conversation: sent whole
        upstream = {name: value for name, value in body.items() if name != "previous_response_id"}
        upstream["input"] = [*earlier_items, *input_items(body["input"])]
        native.body = upstream


# ── answer ───────────────────────────────────────────────────────────────────────────────────
def usage_of(usage: Any) -> dict[str, Any]:
    usage = usage if isinstance(usage, dict) else {}
    prompt = non_negative(usage.get("prompt_tokens"))
    completion = non_negative(usage.get("completion_tokens"))
    prompt_details = usage.get("prompt_tokens_details")
    completion_details = usage.get("completion_tokens_details")
    return {
        "input_tokens": prompt,
        "input_tokens_details": {
            "cached_tokens": non_negative(prompt_details.get("cached_tokens"))
            if isinstance(prompt_details, dict)
            else 0
        },
        "output_tokens": completion,
        "output_tokens_details": {
            "reasoning_tokens": non_negative(completion_details.get("reasoning_tokens"))
            if isinstance(completion_details, dict)
            else 0
        },
        "total_tokens": non_negative(usage.get("total_tokens")) or prompt + completion,
    }


def reasoning_item(text: str) -> dict[str, Any]:
    return {
        "type": "reasoning",
        "id": new_id("rs"),
        "summary": [{"type": "summary_text", "text": text}],
    }


def message_item(text: str, item_id: str | None = None) -> dict[str, Any]:
    return {
        "type": "message",
        "id": item_id or new_id("msg"),
        "status": "completed",
        "role": "assistant",
        "content": [{"type": "output_text", "text": text, "annotations": []}],
    }


def call_item(
    call_id: str, name: str, arguments: str, item_id: str | None = None
) -> dict[str, Any]:
    return {
        "type": "function_call",
        "id": item_id or new_id("fc"),
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
        "status": "completed",
    }


def response_object(
    body: dict[str, Any],
    response_id: str,
    created: int,
    output: list[dict[str, Any]],
    usage: dict[str, Any] | None,
    status: str = "completed",
    error: dict[str, Any] | None = None,
    incomplete: str | None = None,
) -> dict[str, Any]:
    """A response as the API returns it, echoing the request's settings."""
    given = body.get("reasoning")
    reasoning: dict[str, Any] = given if isinstance(given, dict) else {}
    return {
        "id": response_id,
        "object": "response",
        "created_at": created,
        "status": status,
        "error": error,
        "incomplete_details": {"reason": incomplete} if incomplete else None,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "model": body.get("model"),
        "output": output,
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "previous_response_id": body.get("previous_response_id"),
        "reasoning": {"effort": reasoning.get("effort"), "summary": reasoning.get("summary")},
        "store": body.get("store", True) is not False,
        "temperature": body.get("temperature"),
        "text": body.get("text")
        if isinstance(body.get("text"), dict)
        else {"format": {"type": "text"}},
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools") or [],
        "top_p": body.get("top_p"),
        "truncation": "disabled",
        "usage": usage,
        "user": body.get("user"),
        "metadata": body.get("metadata") if isinstance(body.get("metadata"), dict) else {},
    }


def output_of(chat: dict[str, Any]) -> tuple[list[dict[str, Any]], str | None]:
    """(output items, the reason it is incomplete if it is) of a whole chat answer."""
    choices = chat.get("choices") or [{}]
    choice = choices[0] if isinstance(choices[0], dict) else {}
    given = choice.get("message")
    message: dict[str, Any] = given if isinstance(given, dict) else {}
    output: list[dict[str, Any]] = []
    reasoning = message.get("reasoning_content") or message.get("reasoning")
    if isinstance(reasoning, str) and reasoning:
        output.append(reasoning_item(reasoning))
    text = message.get("content")
    if isinstance(text, str) and text:
        output.append(message_item(text))
    for call in message.get("tool_calls") or []:
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict):
            output.append(
                call_item(
                    str(call.get("id") or new_id("call")),
                    str(function.get("name") or ""),
                    str(function.get("arguments") or ""),
                )
            )
    incomplete = "max_output_tokens" if choice.get("finish_reason") == "length" else None
    return output, incomplete


def assistant_message(output: list[dict[str, Any]]) -> dict[str, Any]:
    """The answer as a chat message, for the conversation a follow-up continues."""
    text = "".join(
        part["text"]
        for item in output
        if item["type"] == "message"
        for part in item["content"]
        if part.get("type") == "output_text"
    )
    calls = [
        {
            "id": item["call_id"],
            "type": "function",
            "function": {"name": item["name"], "arguments": item["arguments"]},
        }
        for item in output
        if item["type"] == "function_call"
    ]
    message: dict[str, Any] = {"role": "assistant", "content": text or None}
    if calls:
        message["tool_calls"] = calls
    return message


# ── stream ───────────────────────────────────────────────────────────────────────────────────
def sse(payload: dict[str, Any]) -> bytes:
    kind = str(payload["type"]).encode()
    return b"event: " + kind + b"\ndata: " + orjson.dumps(payload) + b"\n\n"


class ResponsesStream:
    """Chat Completions chunks in, Responses events out (one instance per stream)."""

    def __init__(self, body: dict[str, Any], response_id: str) -> None:
        self.body = body
        self.id = response_id
        self.created = int(time.time())
        self.output: list[dict[str, Any]] = []
        self.usage: dict[str, Any] | None = None
        self.incomplete: str | None = None
        self._sequence = count()
        self._open: dict[str, Any] | None = None  # the item being written
        self._tools: dict[int, dict[str, Any]] = {}
        self._started = False

    def _event(self, out: list[bytes], kind: str, **fields: Any) -> None:
        out.append(sse({"type": kind, "sequence_number": next(self._sequence), **fields}))

    def response(self, status: str, error: dict[str, Any] | None = None) -> dict[str, Any]:
        return response_object(
            self.body,
            self.id,
            self.created,
            self.output,
            self.usage,
            status,
            error,
            self.incomplete,
        )

    def start(self) -> list[bytes]:
        out: list[bytes] = []
        self._started = True
        self._event(out, "response.created", response=self.response("in_progress"))
        self._event(out, "response.in_progress", response=self.response("in_progress"))
        return out

    def _close(self, out: list[bytes]) -> None:
        item = self._open
        if item is None:
            return
        self._open = None
        index = self.output.index(item)
        if item["type"] == "message":
            part = item["content"][0]
            self._event(
                out,
                "response.output_text.done",
                item_id=item["id"],
                output_index=index,
                content_index=0,
                text=part["text"],
            )
            self._event(
                out,
                "response.content_part.done",
                item_id=item["id"],
                output_index=index,
                content_index=0,
                part=part,
            )
        elif item["type"] == "reasoning":
            part = item["summary"][0]
            self._event(
                out,
                "response.reasoning_summary_text.done",
                item_id=item["id"],
                output_index=index,
                summary_index=0,
                text=part["text"],
            )
            self._event(
                out,
                "response.reasoning_summary_part.done",
                item_id=item["id"],
                output_index=index,
                summary_index=0,
                part=part,
            )
        else:
            self._event(
                out,
                "response.function_call_arguments.done",
                item_id=item["id"],
                output_index=index,
                arguments=item["arguments"],
            )
        if item["type"] != "reasoning":  # reasoning items have no status
            item["status"] = "completed"
        self._event(out, "response.output_item.done", output_index=index, item=item)

    def _add(self, out: list[bytes], item: dict[str, Any]) -> int:
        self._close(out)
        self.output.append(item)
        self._open = item
        index = len(self.output) - 1
        added = {**item}
        if item["type"] == "message":
            added["content"] = []
        elif item["type"] == "reasoning":
            added["summary"] = []
        self._event(out, "response.output_item.added", output_index=index, item=added)
        return index

    def feed(self, chunk: dict[str, Any]) -> list[bytes]:
        """The events for one chat chunk, as parsed."""
        out: list[bytes] = [] if self._started else self.start()
        if chunk.get("usage"):
            self.usage = usage_of(chunk["usage"])
        for choice in chunk.get("choices") or []:
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            given = choice.get("delta")
            delta: dict[str, Any] = given if isinstance(given, dict) else {}
            reasoning = delta.get("reasoning_content") or delta.get("reasoning")
            if isinstance(reasoning, str) and reasoning:
                self._reasoning(out, reasoning)
            text = delta.get("content")
            if isinstance(text, str) and text:
                self._text(out, text)
            for call in delta.get("tool_calls") or []:
                self._tool_call(out, call)
            if choice.get("finish_reason") == "length":
                self.incomplete = "max_output_tokens"
        return out

    def _reasoning(self, out: list[bytes], text: str) -> None:
        item = self._open
        if item is None or item["type"] != "reasoning":
            item = {
                "type": "reasoning",
                "id": new_id("rs"),
                "summary": [{"type": "summary_text", "text": ""}],
            }
            index = self._add(out, item)
            self._event(
                out,
                "response.reasoning_summary_part.added",
                item_id=item["id"],
                output_index=index,
                summary_index=0,
                part={"type": "summary_text", "text": ""},
            )
        index = len(self.output) - 1
        item["summary"][0]["text"] += text
        self._event(
            out,
            "response.reasoning_summary_text.delta",
            item_id=item["id"],
            output_index=index,
            summary_index=0,
            delta=text,
        )

    def _text(self, out: list[bytes], text: str) -> None:
        item = self._open
        if item is None or item["type"] != "message":
            item = message_item("")
            item["status"] = "in_progress"
            index = self._add(out, item)
            self._event(
                out,
                "response.content_part.added",
                item_id=item["id"],
                output_index=index,
                content_index=0,
                part={"type": "output_text", "text": "", "annotations": []},
            )
        index = len(self.output) - 1
        item["content"][0]["text"] += text
        self._event(
            out,
            "response.output_text.delta",
            item_id=item["id"],
            output_index=index,
            content_index=0,
            delta=text,
        )

    def _tool_call(self, out: list[bytes], call: Any) -> None:
        if not isinstance(call, dict):
            return
        position = call.get("index", 0)
        given = call.get("function")
        function: dict[str, Any] = given if isinstance(given, dict) else {}
        item = self._tools.get(position)
        if item is None or (call.get("id") and item is not self._open):
            item = call_item(
                str(call.get("id") or new_id("call")), str(function.get("name") or ""), ""
            )
            item["status"] = "in_progress"
            self._add(out, item)
            self._tools[position] = item
        elif item is not self._open:
            return
        arguments = function.get("arguments")
        if isinstance(arguments, str) and arguments:
            item["arguments"] += arguments
            index = len(self.output) - 1
            self._event(
                out,
                "response.function_call_arguments.delta",
                item_id=item["id"],
                output_index=index,
                delta=arguments,
            )

    def finish(self) -> list[bytes]:
        out: list[bytes] = [] if self._started else self.start()
        self._close(out)
        status = "incomplete" if self.incomplete else "completed"
        self._event(out, f"response.{status}", response=self.response(status))
        return out

    def failed(self, message: str, code: str) -> list[bytes]:
        out: list[bytes] = [] if self._started else self.start()
        self._close(out)
        error = {"code": code, "message": message}
        self._event(out, "response.failed", response=self.response("failed", error))
        return out
