"""Reading a chat-completions body without re-validating what the upstream will validate anyway.

Checked here: it is a JSON object; `model` and `messages` are present and well-formed; `stream`,
`stream_options` and `n` have sane types and bounds; no field tries to change where the request or its
credentials go. Everything else (tools, response_format, temperature, multimodal parts …) passes
through untouched.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from app.core.errors import BadRequestError

ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
# Fields some SDKs and proxies use to point a call at another endpoint or credential.
REDIRECTING_FIELDS = frozenset(
    {
        "api_base",
        "base_url",
        "api_key",
        "api_version",
        "api_type",
        "organization",
        "headers",
        "extra_headers",
        "extra_query",
        "extra_body",
        "custom_llm_provider",
        "azure_endpoint",
        "azure_ad_token",
        "deployment_id",
        "endpoint",
        "proxy",
        "proxies",
        "url",
    }
)
MAX_MESSAGES = 10_000
MAX_MODEL_LENGTH = 256


@dataclass
class ChatRequest:
    body: dict[str, Any]
    model: str
    stream: bool
    include_usage: bool
    messages: list[Any]

    def upstream_body(self, upstream_model: str) -> bytes:
        body = dict(self.body)
        body["model"] = upstream_model
        if self.stream:
            # Always ask for usage; the usage-only chunk is dropped if the client did not ask.
            options = dict(body.get("stream_options") or {})
            options["include_usage"] = True
            body["stream_options"] = options
        return orjson.dumps(body)


def _invalid(message: str, param: str | None = None) -> BadRequestError:
    return BadRequestError(message, code="invalid_request_error", param=param)


def _check_message(index: int, message: Any) -> None:
    where = f"messages[{index}]"
    if not isinstance(message, dict):
        raise _invalid(f"{where} must be an object", where)
    role = message.get("role")
    if not isinstance(role, str) or role not in ROLES:
        raise _invalid(
            f"{where}.role must be one of {', '.join(sorted(ROLES))}; got {role!r}"[:300],
            f"{where}.role",
        )
    content = message.get("content")
    if content is None:
        if role == "assistant" and (message.get("tool_calls") or message.get("function_call")):
            return
        if role == "assistant":
            return
        raise _invalid(f"{where}.content is required for role '{role}'", f"{where}.content")
    if isinstance(content, list):
        for part_index, part in enumerate(content):
            if not isinstance(part, dict) or not isinstance(part.get("type"), str):
                raise _invalid(
                    f"{where}.content[{part_index}] must be an object with a 'type'",
                    f"{where}.content",
                )
    elif not isinstance(content, str):
        raise _invalid(f"{where}.content must be a string or a list of parts", f"{where}.content")


def parse_chat_request(raw: bytes, *, max_choices: int) -> ChatRequest:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise _invalid("The request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise _invalid("The request body must be a JSON object")
    for name in body:
        if name in REDIRECTING_FIELDS:
            raise _invalid(f"'{name}' is not accepted: the gateway decides where calls go", name)
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        raise _invalid("'model' is required and must be a non-empty string", "model")
    if len(model) > MAX_MODEL_LENGTH:
        raise _invalid("'model' is too long", "model")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _invalid("'messages' must be a non-empty array", "messages")
    if len(messages) > MAX_MESSAGES:
        raise _invalid(f"'messages' may hold at most {MAX_MESSAGES} items", "messages")
    for index, message in enumerate(messages):
        _check_message(index, message)
    stream = body.get("stream", False)
    if stream is None:
        stream = False
    if not isinstance(stream, bool):
        raise _invalid("'stream' must be a boolean", "stream")
    options = body.get("stream_options")
    if options is not None and not isinstance(options, dict):
        raise _invalid("'stream_options' must be an object", "stream_options")
    include_usage = bool(options and options.get("include_usage") is True)
    n = body.get("n")
    if n is not None and (
        not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= max_choices
    ):
        raise _invalid(f"'n' must be an integer from 1 to {max_choices}", "n")
    return ChatRequest(
        body=body, model=model, stream=stream, include_usage=include_usage, messages=messages
    )
