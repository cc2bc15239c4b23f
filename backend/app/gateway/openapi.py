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

V1_PATHS: dict[str, Any] = {
    "/v1/chat/completions": {
        "post": {
            "tags": ["openai"],
            "operationId": "openai-chat_completions",
            "summary": "Chat completions (OpenAI format), streamed as SSE or not",
            "description": "Every OpenAI field passes through to the provider. Fields that would "
            "redirect the call (api_base, base_url, api_key, headers …) are refused.",
            "security": _SECURITY,
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["model", "messages"],
                            "properties": {
                                "model": {"type": "string", "minLength": 1},
                                "messages": {
                                    "type": "array",
                                    "minItems": 1,
                                    "items": {
                                        "type": "object",
                                        "required": ["role"],
                                        "properties": {
                                            "role": {"type": "string"},
                                            "content": {},
                                        },
                                    },
                                },
                                "stream": {"type": "boolean"},
                                "stream_options": {"type": "object"},
                                "n": {"type": "integer", "minimum": 1},
                            },
                        }
                    }
                },
            },
            "responses": {
                "200": {
                    "description": "A chat completion, or an SSE stream of chunks",
                    "content": {
                        "application/json": {"schema": {"type": "object"}},
                        "text/event-stream": {"schema": {"type": "string"}},
                    },
                },
                **_ERRORS,
            },
        }
    },
    "/v1/completions": {
        "post": {
            "tags": ["openai"],
            "operationId": "openai-completions",
            "summary": "Legacy text completions (OpenAI format), streamed as SSE or not",
            "description": "`prompt` is a string, an array of strings, or token ids; every other "
            "field passes through to the provider.",
            "security": _SECURITY,
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["model", "prompt"],
                            "properties": {
                                "model": {"type": "string", "minLength": 1},
                                "prompt": {},
                                "stream": {"type": "boolean"},
                                "stream_options": {"type": "object"},
                                "n": {"type": "integer", "minimum": 1},
                            },
                        }
                    }
                },
            },
            "responses": {
                "200": {
                    "description": "A text completion, or an SSE stream of chunks",
                    "content": {
                        "application/json": {"schema": {"type": "object"}},
                        "text/event-stream": {"schema": {"type": "string"}},
                    },
                },
                **_ERRORS,
            },
        }
    },
    "/v1/embeddings": {
        "post": {
            "tags": ["openai"],
            "operationId": "openai-embeddings",
            "summary": "Embeddings (OpenAI format)",
            "description": "`input` is a string, an array of strings (up to 2048), token ids or "
            "arrays of token ids; `encoding_format` (float or base64) and `dimensions` pass "
            "through to the provider.",
            "security": _SECURITY,
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["model", "input"],
                            "properties": {
                                "model": {"type": "string", "minLength": 1},
                                "input": {},
                                "encoding_format": {"type": "string", "enum": ["float", "base64"]},
                                "dimensions": {"type": "integer", "minimum": 1},
                            },
                        }
                    }
                },
            },
            "responses": {
                "200": {
                    "description": "Embedding list with usage",
                    "content": {"application/json": {"schema": {"type": "object"}}},
                },
                **_ERRORS,
            },
        }
    },
    "/v1/responses": {
        "post": {
            "tags": ["openai"],
            "operationId": "openai-create_response",
            "summary": "Responses API (OpenAI format) on any channel, streamed as its events or not",
            "description": "Translated to Chat Completions for the channel and back: input items "
            "(messages with text, image and file parts, function calls and their outputs), "
            "instructions, function tools, tool_choice, text.format (JSON schema), "
            "reasoning.effort, max_output_tokens. With `store` (the default) the response is kept "
            "for its user: `previous_response_id` continues it.",
            "security": _SECURITY,
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["model", "input"],
                            "properties": {
                                "model": {"type": "string", "minLength": 1},
                                "input": {},
                                "instructions": {"type": "string"},
                                "previous_response_id": {"type": "string"},
                                "store": {"type": "boolean"},
                                "stream": {"type": "boolean"},
                                "tools": {"type": "array"},
                                "max_output_tokens": {"type": "integer", "minimum": 1},
                            },
                        }
                    }
                },
            },
            "responses": {
                "200": {
                    "description": "A response object, or a stream of response events",
                    "content": {
                        "application/json": {"schema": {"type": "object"}},
                        "text/event-stream": {"schema": {"type": "string"}},
                    },
                },
                **_ERRORS,
            },
        }
    },
    "/v1/responses/{response_id}": {
        method: {
            "tags": ["openai"],
            "operationId": f"openai-{verb}_response",
            "summary": summary,
            "security": _SECURITY,
            "parameters": [
                {
                    "name": "response_id",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string"},
                }
            ],
            "responses": {
                "200": {
                    "description": summary,
                    "content": {"application/json": {"schema": {"type": "object"}}},
                },
                **_ERRORS,
            },
        }
        for method, verb, summary in (
            ("get", "retrieve", "One of the caller's kept responses"),
            ("delete", "delete", "Delete one of the caller's kept responses"),
        )
    },
    "/v1/messages": {
        "post": {
            "tags": ["openai"],
            "operationId": "anthropic-messages",
            "summary": "Anthropic Messages API on any channel, streamed as Anthropic's events or not",
            "description": "Keys as `x-api-key` or a bearer token. Translated to Chat "
            "Completions for the channel and back: system, text, image and PDF blocks, tools and "
            "tool results, thinking (as reasoning), stop reasons and usage. Errors use "
            "Anthropic's envelope.",
            "security": _SECURITY,
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["model", "max_tokens", "messages"],
                            "properties": {
                                "model": {"type": "string", "minLength": 1},
                                "max_tokens": {"type": "integer", "minimum": 1},
                                "messages": {"type": "array", "minItems": 1},
                                "system": {},
                                "stream": {"type": "boolean"},
                                "tools": {"type": "array"},
                                "tool_choice": {"type": "object"},
                                "thinking": {"type": "object"},
                            },
                        }
                    }
                },
            },
            "responses": {
                "200": {
                    "description": "A message, or a stream of Anthropic's events",
                    "content": {
                        "application/json": {"schema": {"type": "object"}},
                        "text/event-stream": {"schema": {"type": "string"}},
                    },
                },
                **_ANTHROPIC_ERRORS,
            },
        }
    },
    "/v1/messages/count_tokens": {
        "post": {
            "tags": ["openai"],
            "operationId": "anthropic-count_tokens",
            "summary": "An estimate of a Messages request's input tokens (no model is called)",
            "security": _SECURITY,
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": {"type": "object"}}},
            },
            "responses": {
                "200": {
                    "description": '`{"input_tokens": n}`',
                    "content": {"application/json": {"schema": {"type": "object"}}},
                },
                **_ANTHROPIC_ERRORS,
            },
        }
    },
    "/v1/models/{model}": {
        "get": {
            "tags": ["openai"],
            "operationId": "openai-retrieve_model",
            "summary": "One model the caller may use (OpenAI format); 404 otherwise",
            "security": _SECURITY,
            "parameters": [
                {"name": "model", "in": "path", "required": True, "schema": {"type": "string"}}
            ],
            "responses": {
                "200": {
                    "description": "The model",
                    "content": {"application/json": {"schema": {"type": "object"}}},
                },
                **_ERRORS,
            },
        }
    },
    "/v1/models": {
        "get": {
            "tags": ["openai"],
            "operationId": "openai-list_models",
            "summary": "Models the caller may use (OpenAI format)",
            "security": _SECURITY,
            "responses": {
                "200": {
                    "description": "Model list",
                    "content": {"application/json": {"schema": {"type": "object"}}},
                },
                **_ERRORS,
            },
        }
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
