"""A live gateway with the mock upstream as its one channel, and users who chat through it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from app.devtools.mock_upstream import MockServer
from tests.conversations.sse import Event, events
from tests.live import LiveGateway

PROFILE = "chat"
MODEL = "mock-gpt"


@dataclass
class ChatUser:
    gateway: LiveGateway
    headers: dict[str, str]
    id: int

    @property
    def http(self) -> httpx.Client:
        return self.gateway.http

    def create(self, **body: Any) -> dict[str, Any]:
        response = self.http.post("/api/conversations", json=body, headers=self.headers)
        assert response.status_code == 201, response.text
        return dict(response.json())

    def get(self, conversation_id: int) -> dict[str, Any]:
        response = self.http.get(f"/api/conversations/{conversation_id}", headers=self.headers)
        assert response.status_code == 200, response.text
        return dict(response.json())

    @contextmanager
    def stream(self, method: str, path: str, **kwargs: Any) -> Iterator[Iterator[Event]]:
        with self.http.stream(
            method, path, headers={**self.headers, **kwargs.pop("headers", {})}, **kwargs
        ) as response:
            yield events(response)

    def send(self, conversation_id: int, content: str, **body: Any) -> list[Event]:
        with self.stream(
            "POST",
            f"/api/conversations/{conversation_id}/messages",
            json={"content": content, **body},
        ) as stream:
            return list(stream)


def sign_up(gateway: LiveGateway, name: str | None = None) -> ChatUser:
    username = name or f"u{uuid.uuid4().hex[:10]}"
    password = "correct horse battery"
    response = gateway.http.post(
        "/api/auth/register", json={"username": username, "password": password}
    )
    assert response.status_code == 201, response.text
    login = gateway.http.post("/api/auth/login", json={"username": username, "password": password})
    token = login.json()["access_token"]
    return ChatUser(gateway, {"Authorization": f"Bearer {token}"}, response.json()["id"])


def reply_requests(mock: MockServer) -> list[dict[str, Any]]:
    """Bodies of the streamed calls the mock received (replies, not title calls)."""
    return [r.body for r in mock.state.chat_requests() if r.body.get("stream")]


def behave(mock: MockServer, **options: object) -> None:
    """How the chat channel's upstream answers from now on."""
    mock.set_profile(PROFILE, **options)


@pytest.fixture
def chat_gateway(gateway: LiveGateway, mock_upstream: MockServer) -> LiveGateway:
    behave(mock_upstream)
    gateway.create_channel(base_url=mock_upstream.base_url(PROFILE), models=[MODEL], idle_timeout=2)
    return gateway


@pytest.fixture
def alice(chat_gateway: LiveGateway) -> ChatUser:
    return sign_up(chat_gateway)


@pytest.fixture
def bob(chat_gateway: LiveGateway) -> ChatUser:
    return sign_up(chat_gateway)
