"""What differs between channel types: how a call is addressed, authenticated, written and read.

A channel's `type` picks its `Dialect`: `openai` (any OpenAI-compatible API), `azure` (Azure
OpenAI: `api-key`, deployment URLs with `api-version`), `anthropic` (the Messages API) and `gemini`
(`generateContent`). Everything else — routing, failover, limits, logging — is the same for all;
the few places that must know the provider ask the channel's dialect, never its type name.

A chat request reaches every dialect (translated where the provider speaks another format, and
answers translated back to Chat Completions chunks and objects). A request that arrived in a
provider's own format (`ModelRequest.native`) goes to a channel that speaks it as it came.
"""

from __future__ import annotations

from typing import Any, Protocol
from urllib.parse import quote

from app.gateway import anthropic_upstream, gemini_upstream
from app.gateway.request import ModelRequest
from app.gateway.sse import SSEDecoder

CHAT = "/chat/completions"
RESPONSES = "/responses"
MESSAGES = "/messages"


class StreamDecoder(Protocol):
    """Network reads in, stream payloads out (`SSEDecoder`, or one translating to chat chunks)."""

    def feed(self, data: bytes) -> list[bytes]: ...

    def finish(self) -> list[bytes]: ...


class Dialect:
    """An OpenAI-compatible API: a bearer key, `<base>/chat/completions` and its siblings."""

    kind = "openai"
    name = "OpenAI-compatible"
    # Endpoints answered as they are (besides chat): chat's siblings here; a provider's own format
    # for the others. `/responses` only where the admin says the upstream speaks it.
    endpoints: frozenset[str] = frozenset({CHAT, "/completions", "/embeddings"})
    native: frozenset[str] = frozenset()

    def native_endpoints(self, responses_api: bool) -> frozenset[str]:
        """The formats a channel of this kind takes as they come (`responses_api`: the admin's
        word that the upstream serves `/responses`)."""
        return self.native | {RESPONSES} if responses_api else self.native

    def key_headers(self, api_key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {api_key}"}

    def headers(self, api_key: str) -> dict[str, str]:
        """Every request's headers (built once per channel)."""
        return {
            **self.key_headers(api_key),
            "Content-Type": "application/json",
            "Accept": "application/json, text/event-stream",
        }

    def url(
        self, base_url: str, api_version: str | None, path: str, model: str, stream: bool
    ) -> str:
        return base_url + path

    def url_varies(self, api_version: str | None) -> tuple[bool, bool]:
        """Whether a request's URL depends on (the model, streaming) — what a prepared request is
        kept per."""
        return False, False

    def refusal(self, endpoint: str) -> str | None:
        """Why a request for `endpoint` cannot go to this kind of channel (None: it can)."""
        return None

    def body(self, request: ModelRequest, upstream_model: str) -> bytes:
        return request.upstream_body(upstream_model)

    def decoder(self, upstream_model: str) -> StreamDecoder:
        return SSEDecoder()

    def answer(self, parsed: dict[str, Any], upstream_model: str) -> dict[str, Any]:
        """A whole answer as a Chat Completions object."""
        return parsed

    def models_url(self, base_url: str) -> str:
        return f"{base_url}/models"

    def model_names(self, data: Any) -> list[str] | None:
        """The ids in a `/models` answer (None if it holds no list)."""
        items = data.get("data") if isinstance(data, dict) else data
        if not isinstance(items, list):
            return None
        return [str(item["id"]) for item in items if isinstance(item, dict) and item.get("id")]

    def list_refusal(self, api_version: str | None) -> str | None:
        """Why this channel's models cannot be listed through its API (None: they can)."""
        return None


class AzureDialect(Dialect):
    """Azure OpenAI: an `api-key` header; with an API version, calls go to the model's deployment."""

    kind = "azure"
    name = "Azure OpenAI"

    def key_headers(self, api_key: str) -> dict[str, str]:
        return {"api-key": api_key}

    def url(
        self, base_url: str, api_version: str | None, path: str, model: str, stream: bool
    ) -> str:
        if not api_version:
            return base_url + path
        if path == RESPONSES:  # one endpoint for all deployments: the body's model names it
            return f"{base_url}/openai/responses?api-version={api_version}"
        deployment = quote(model, safe="")
        return f"{base_url}/openai/deployments/{deployment}{path}?api-version={api_version}"

    def url_varies(self, api_version: str | None) -> tuple[bool, bool]:
        return api_version is not None, False

    def list_refusal(self, api_version: str | None) -> str | None:
        if api_version:
            return (
                "Azure OpenAI lists its deployments in the Azure portal, not through this API: "
                "enter the deployment names as the channel's models"
            )
        return None


class ChatOnlyDialect(Dialect):
    """A provider with a format of its own, reached for chat (translated) only."""

    endpoints = frozenset({CHAT})

    def native_endpoints(self, responses_api: bool) -> frozenset[str]:
        return self.native

    def refusal(self, endpoint: str) -> str | None:
        if endpoint in self.endpoints or endpoint in self.native:
            return None
        return f"{self.name} channels answer chat requests only, not {endpoint}"


class AnthropicDialect(ChatOnlyDialect):
    kind = "anthropic"
    name = "Anthropic"
    native = frozenset({MESSAGES})

    def key_headers(self, api_key: str) -> dict[str, str]:
        return {"x-api-key": api_key, "anthropic-version": anthropic_upstream.ANTHROPIC_VERSION}

    def url(
        self, base_url: str, api_version: str | None, path: str, model: str, stream: bool
    ) -> str:
        return base_url + MESSAGES if path == CHAT else base_url + path

    def body(self, request: ModelRequest, upstream_model: str) -> bytes:
        return anthropic_upstream.to_messages_body(request.body, upstream_model, request.stream)

    def decoder(self, upstream_model: str) -> StreamDecoder:
        return anthropic_upstream.ChatChunks()

    def answer(self, parsed: dict[str, Any], upstream_model: str) -> dict[str, Any]:
        return anthropic_upstream.to_chat_completion(parsed)


class GeminiDialect(ChatOnlyDialect):
    kind = "gemini"
    name = "Gemini"

    def key_headers(self, api_key: str) -> dict[str, str]:
        return {"x-goog-api-key": api_key}

    def url(
        self, base_url: str, api_version: str | None, path: str, model: str, stream: bool
    ) -> str:
        if path == CHAT:
            return gemini_upstream.url_for(base_url, model, stream)
        return base_url + path

    def url_varies(self, api_version: str | None) -> tuple[bool, bool]:
        return True, True

    def body(self, request: ModelRequest, upstream_model: str) -> bytes:
        return gemini_upstream.to_gemini_body(request.body)

    def decoder(self, upstream_model: str) -> StreamDecoder:
        return gemini_upstream.ChatChunks(upstream_model)

    def answer(self, parsed: dict[str, Any], upstream_model: str) -> dict[str, Any]:
        return gemini_upstream.to_chat_completion(parsed, upstream_model)

    def model_names(self, data: Any) -> list[str] | None:
        """`{"models": [{"name": "models/…"}]}`."""
        if not isinstance(data, dict) or not isinstance(data.get("models"), list):
            return super().model_names(data)
        return [
            str(item["name"]).removeprefix("models/")
            for item in data["models"]
            if isinstance(item, dict) and item.get("name")
        ]


DIALECTS: dict[str, Dialect] = {
    dialect.kind: dialect
    for dialect in (Dialect(), AzureDialect(), AnthropicDialect(), GeminiDialect())
}


def dialect_for(kind: str) -> Dialect:
    return DIALECTS.get(kind, DIALECTS["openai"])
