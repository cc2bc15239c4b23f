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
_ERRORS = {str(code): _ERROR for code in (400, 401, 403, 404, 405, 413, 429, 502, 503, 504)}
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
