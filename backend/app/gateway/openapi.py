"""The OpenAPI description of `/v1` (served by `gateway.endpoints`, outside FastAPI's routing)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

_ERROR = {
    "description": "OpenAI error envelope",
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["error"],
                "properties": {
                    "error": {
                        "type": "object",
                        "required": ["message", "type", "param", "code"],
                        "properties": {
                            "message": {"type": "string"},
                            "type": {"type": "string"},
                            "param": {"type": ["string", "null"]},
                            "code": {"type": ["string", "null"]},
                        },
                    }
                },
            }
        }
    },
}
_ERRORS_CODES = (400, 401, 403, 404, 405, 413, 429, 502, 503, 504)
_ERRORS = {str(code): _ERROR for code in _ERRORS_CODES}
_ANTHROPIC_ERROR = {
    "description": "Anthropic error envelope",
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["type", "error"],
                "properties": {
                    "type": {"type": "string", "enum": ["error"]},
                    "error": {
                        "type": "object",
                        "required": ["type", "message"],
                        "properties": {"type": {"type": "string"}, "message": {"type": "string"}},
                    },
                },
            }
        }
    },
}
_ANTHROPIC_ERRORS = {str(code): _ANTHROPIC_ERROR for code in _ERRORS_CODES}
_SECURITY: list[dict[str, list[str]]] = [{"OpenAIKey": []}]

_JSON = {"application/json": {"schema": {"type": "object"}}}
_JSON_OR_SSE = {**_JSON, "text/event-stream": {"schema": {"type": "string"}}}
_MODEL = {"type": "string", "minLength": 1}


def _operation(
    operation_id: str,
    summary: str,
    answer: str,
    *,
    description: str | None = None,
    body: dict[str, Any] | None = None,
    required: tuple[str, ...] = (),
    path_parameter: str | None = None,
    streams: bool = False,
    anthropic: bool = False,
) -> dict[str, Any]:
    """One `/v1` operation: its JSON body's fields (`body`, None for no body), the 200 answer
    (JSON, or JSON or an SSE stream), and the errors in the envelope its SDK expects."""
    operation: dict[str, Any] = {
        "tags": ["openai"],
        "operationId": operation_id,
        "summary": summary,
        "security": _SECURITY,
    }
    if description:
        operation["description"] = description
    if path_parameter:
        operation["parameters"] = [
            {"name": path_parameter, "in": "path", "required": True, "schema": {"type": "string"}}
        ]
    if body is not None:
        schema: dict[str, Any] = {"type": "object"}
        if required:
            schema["required"] = list(required)
        if body:
            schema["properties"] = body
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": schema}},
        }
    operation["responses"] = {
        "200": {"description": answer, "content": _JSON_OR_SSE if streams else _JSON},
        **(_ANTHROPIC_ERRORS if anthropic else _ERRORS),
    }
    return operation


_STREAM_FIELDS = {
    "stream": {"type": "boolean"},
    "stream_options": {"type": "object"},
    "n": {"type": "integer", "minimum": 1},
}

V1_PATHS: dict[str, Any] = {
    "/v1/chat/completions": {
        "post": _operation(
            "openai-chat_completions",
            "Chat completions (OpenAI format), streamed as SSE or not",
            "A chat completion, or an SSE stream of chunks",
            description="Every OpenAI field passes through to the provider. Fields that would "
            "redirect the call (api_base, base_url, api_key, headers …) are refused.",
            body={
                "model": _MODEL,
                "messages": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["role"],
                        "properties": {"role": {"type": "string"}, "content": {}},
                    },
                },
                **_STREAM_FIELDS,
            },
            required=("model", "messages"),
            streams=True,
        )
    },
    "/v1/completions": {
        "post": _operation(
            "openai-completions",
            "Legacy text completions (OpenAI format), streamed as SSE or not",
            "A text completion, or an SSE stream of chunks",
            description="`prompt` is a string, an array of strings, or token ids; every other "
            "field passes through to the provider.",
            body={"model": _MODEL, "prompt": {}, **_STREAM_FIELDS},
            required=("model", "prompt"),
            streams=True,
        )
    },
    "/v1/embeddings": {
        "post": _operation(
            "openai-embeddings",
            "Embeddings (OpenAI format)",
            "Embedding list with usage",
            description="`input` is a string, an array of strings (up to 2048), token ids or "
            "arrays of token ids; `encoding_format` (float or base64) and `dimensions` pass "
            "through to the provider.",
            body={
                "model": _MODEL,
                "input": {},
                "encoding_format": {"type": "string", "enum": ["float", "base64"]},
                "dimensions": {"type": "integer", "minimum": 1},
            },
            required=("model", "input"),
        )
    },
    "/v1/responses": {
        "post": _operation(
            "openai-create_response",
            "Responses API (OpenAI format) on any channel, streamed as its events or not",
            "A response object, or a stream of response events",
            description="Passed through as it is to a channel that speaks the Responses API "
            "(built-in tools and all); translated to Chat Completions for any other channel and "
            "back: input items (messages with text, image and file parts, function calls and "
            "their outputs), instructions, function tools, tool_choice, text.format (JSON "
            "schema), reasoning.effort, max_output_tokens. With `store` (the default) the "
            "response is kept for its user: `previous_response_id` continues it.",
            body={
                "model": _MODEL,
                "input": {},
                "instructions": {"type": "string"},
                "previous_response_id": {"type": "string"},
                "store": {"type": "boolean"},
                "stream": {"type": "boolean"},
                "tools": {"type": "array"},
                "max_output_tokens": {"type": "integer", "minimum": 1},
            },
            required=("model", "input"),
            streams=True,
        )
    },
    "/v1/responses/{response_id}": {
        "get": _operation(
            "openai-retrieve_response",
            "One of the caller's kept responses",
            "One of the caller's kept responses",
            path_parameter="response_id",
        ),
        "delete": _operation(
            "openai-delete_response",
            "Delete one of the caller's kept responses",
            "Delete one of the caller's kept responses",
            path_parameter="response_id",
        ),
    },
    "/v1/messages": {
        "post": _operation(
            "anthropic-messages",
            "Anthropic Messages API on any channel, streamed as Anthropic's events or not",
            "A message, or a stream of Anthropic's events",
            description="Keys as `x-api-key` or a bearer token. Passed through as it is to an "
            "Anthropic channel; translated to Chat Completions for any other channel and back: "
            "system, text, image and PDF blocks, tools and tool results, thinking (as "
            "reasoning), stop reasons and usage. Errors use Anthropic's envelope.",
            body={
                "model": _MODEL,
                "max_tokens": {"type": "integer", "minimum": 1},
                "messages": {"type": "array", "minItems": 1},
                "system": {},
                "stream": {"type": "boolean"},
                "tools": {"type": "array"},
                "tool_choice": {"type": "object"},
                "thinking": {"type": "object"},
            },
            required=("model", "max_tokens", "messages"),
            streams=True,
            anthropic=True,
        )
    },
    "/v1/messages/count_tokens": {
        "post": _operation(
            "anthropic-count_tokens",
            "An estimate of a Messages request's input tokens (no model is called)",
            '`{"input_tokens": n}`',
            body={},
            anthropic=True,
        )
    },
    "/v1/models/{model}": {
        "get": _operation(
            "openai-retrieve_model",
            "One model the caller may use (OpenAI format); 404 otherwise",
            "The model",
            path_parameter="model",
        )
    },
    "/v1/models": {
        "get": _operation(
            "openai-list_models", "Models the caller may use (OpenAI format)", "Model list"
        )
    },
}


def install(app: FastAPI) -> None:
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = generate()
            schema["paths"] = {**V1_PATHS, **schema.get("paths", {})}
            schemes = schema.setdefault("components", {}).setdefault("securitySchemes", {})
            schemes["OpenAIKey"] = {
                "type": "http",
                "scheme": "bearer",
                "description": "An API key (sk-…) or a signed-in user's access token",
            }
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
