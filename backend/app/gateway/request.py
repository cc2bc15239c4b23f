"""Reading a `/v1` request body without re-validating what the upstream will validate anyway.

Checked here: it is a JSON object; `model` is present; the fields the gateway itself relies on
(chat `messages`, embeddings `input`, legacy completions `prompt`; `stream`, `stream_options`,
`n`) are well-formed and bounded; no field tries to change where the request or its credentials
go. Everything else (tools, response_format, temperature, multimodal parts, encoding_format,
dimensions …) passes through untouched.
"""

from __future__ import annotations

from dataclasses import dataclass, field
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
class Native:
    """A request in a provider's own format (`endpoint`: `/responses`, `/messages`), sent as it
    is to a channel that speaks that format. `untranslatable`: why the request cannot be sent as
    chat to the other channels (then only channels speaking the format can take it)."""

    endpoint: str
    body: dict[str, Any]
    untranslatable: BadRequestError | None = None
    # What the answer object gets from the gateway (a Responses response's id, and the
    # previous_response_id the gateway resolved itself).
    answer_fields: dict[str, Any] = field(default_factory=dict)
    # Headers of the client's that a channel speaking the format gets too (`anthropic-beta`).
    headers: dict[str, str] = field(default_factory=dict)

    def upstream_body(self, upstream_model: str) -> bytes:
        return orjson.dumps({**self.body, "model": upstream_model})


@dataclass
class ModelRequest:
    """A request for one model, as the channel will get it (`endpoint`: the path under the
    channel's base URL). `messages` is what the prompt is estimated from when the provider
    reports no usage. `native`: the request as it came, for channels that speak its format."""

    body: dict[str, Any]
    model: str
    stream: bool
    include_usage: bool
    messages: list[Any]
    endpoint: str = "/chat/completions"
    native: Native | None = None

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


def body_and_model(raw: bytes) -> tuple[dict[str, Any], str]:
    """The body as a JSON object with a usable `model`, no field redirecting the call (every
    `/v1` format reads its body through this)."""
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
    return body, model


def _stream_flags(body: dict[str, Any]) -> tuple[bool, bool]:
    stream = body.get("stream", False)
    if stream is None:
        stream = False
    if not isinstance(stream, bool):
        raise _invalid("'stream' must be a boolean", "stream")
    options = body.get("stream_options")
    if options is not None and not isinstance(options, dict):
        raise _invalid("'stream_options' must be an object", "stream_options")
    return stream, bool(options and options.get("include_usage") is True)


def _check_choices(body: dict[str, Any], max_choices: int) -> None:
    n = body.get("n")
    if n is not None and (
        not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= max_choices
    ):
        raise _invalid(f"'n' must be an integer from 1 to {max_choices}", "n")


def _texts(value: Any, name: str, max_items: int) -> list[str] | None:
    """A string, or an array of strings / token ids / arrays of token ids, as OpenAI takes for
    `input` and `prompt`. Returns the strings (for estimating usage), None for token ids."""
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not value:
        raise _invalid(f"'{name}' must be a string or a non-empty array", name)
    if len(value) > max_items:
        raise _invalid(f"'{name}' may hold at most {max_items} items", name)
    if all(isinstance(item, str) for item in value):
        return list(value)
    if all(_is_token(item) for item in value):
        return None
    if all(
        isinstance(item, list) and item and all(_is_token(token) for token in item)
        for item in value
    ):
        return None
    raise _invalid(
        f"'{name}' must be a string, an array of strings, an array of token ids, or an array of "
        "arrays of token ids",
        name,
    )


def _is_token(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _prompt_messages(texts: list[str] | None) -> list[Any]:
    return [{"role": "user", "content": text} for text in texts or ()]


MAX_EMBEDDING_INPUTS = 2048


def parse_embeddings_request(raw: bytes) -> ModelRequest:
    body, model = body_and_model(raw)
    texts = _texts(body.get("input"), "input", MAX_EMBEDDING_INPUTS)
    if "stream" in body:
        raise _invalid("Embeddings are not streamed", "stream")
    encoding = body.get("encoding_format")
    if encoding is not None and encoding not in ("float", "base64"):
        raise _invalid("'encoding_format' must be 'float' or 'base64'", "encoding_format")
    dimensions = body.get("dimensions")
    if dimensions is not None and (not _is_token(dimensions) or dimensions < 1):
        raise _invalid("'dimensions' must be a positive integer", "dimensions")
    return ModelRequest(
        body=body,
        model=model,
        stream=False,
        include_usage=False,
        messages=_prompt_messages(texts),
        endpoint="/embeddings",
    )


def parse_completions_request(raw: bytes, *, max_choices: int) -> ModelRequest:
    """The legacy text completions (`/v1/completions`)."""
    body, model = body_and_model(raw)
    texts = _texts(body.get("prompt"), "prompt", MAX_MESSAGES)
    stream, include_usage = _stream_flags(body)
    _check_choices(body, max_choices)
    return ModelRequest(
        body=body,
        model=model,
        stream=stream,
        include_usage=include_usage,
        messages=_prompt_messages(texts),
        endpoint="/completions",
    )


def parse_chat_request(raw: bytes, *, max_choices: int) -> ModelRequest:
    body, model = body_and_model(raw)
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _invalid("'messages' must be a non-empty array", "messages")
    if len(messages) > MAX_MESSAGES:
        raise _invalid(f"'messages' may hold at most {MAX_MESSAGES} items", "messages")
    for index, message in enumerate(messages):
        _check_message(index, message)
    stream, include_usage = _stream_flags(body)
    _check_choices(body, max_choices)
    return ModelRequest(
        body=body, model=model, stream=stream, include_usage=include_usage, messages=messages
    )
