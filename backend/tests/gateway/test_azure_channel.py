"""Azure OpenAI channels: the key as `api-key`, deployment URLs with `api-version`, or Azure's v1 API."""

from __future__ import annotations

import openai
import pytest

from app.devtools.mock_upstream import MockServer
from tests.live import UPSTREAM_KEY, LiveGateway

MESSAGES = [{"role": "user", "content": "hello there"}]


def _client(gateway: LiveGateway, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=key, max_retries=0)


def test_deployment_urls_with_an_api_version(
    gateway: LiveGateway, mock_upstream: MockServer
) -> None:
    channel = gateway.create_channel(
        type="azure",
        base_url=mock_upstream.base_url().removesuffix("/v1"),
        api_version="2024-10-21",
        models=["embed"],
        model_mapping={"gpt-4o": "mock-gpt", "embed": "text-embedding-3-small"},
    )
    assert (channel["type"], channel["api_version"]) == ("azure", "2024-10-21")
    with _client(gateway, gateway.create_key()) as client:
        answer = client.chat.completions.create(model="gpt-4o", messages=MESSAGES)  # type: ignore[arg-type]
        streamed = list(
            client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
        )  # type: ignore[arg-type]
        vectors = client.embeddings.create(model="embed", input="hi")
    assert answer.choices[0].message.content == "Hello from the mock upstream."
    assert "".join(c.choices[0].delta.content or "" for c in streamed if c.choices).startswith(
        "Hello"
    )
    assert len(vectors.data[0].embedding) == 8
    seen = list(mock_upstream.state.requests)
    assert [r.path for r in seen] == [
        "/openai/deployments/mock-gpt/chat/completions",
        "/openai/deployments/mock-gpt/chat/completions",
        "/openai/deployments/text-embedding-3-small/embeddings",
    ]
    assert all(r.query == "api-version=2024-10-21" for r in seen)
    assert all(r.api_key == UPSTREAM_KEY and r.authorization is None for r in seen)
    # The channel test goes the same way.
    tested = gateway.http.post(
        f"/api/admin/channels/{channel['id']}/test", json={"model": "gpt-4o"}, headers=gateway.admin
    )
    assert tested.json()["ok"] is True, tested.text
    # Deployments are not listed by this API: a clear refusal, not an upstream error.
    fetched = gateway.http.post(
        f"/api/admin/channels/{channel['id']}/fetch-models", headers=gateway.admin
    )
    assert fetched.status_code == 422
    assert "deployment" in fetched.text


def test_azures_v1_api_is_openai_with_an_api_key_header(
    gateway: LiveGateway, mock_upstream: MockServer
) -> None:
    gateway.create_channel(type="azure", base_url=mock_upstream.base_url())
    with _client(gateway, gateway.create_key()) as client:
        answer = client.chat.completions.create(model="mock-gpt", messages=MESSAGES)  # type: ignore[arg-type]
    assert answer.choices[0].message.content.startswith("Hello")  # type: ignore[union-attr]
    (seen,) = mock_upstream.state.chat_requests()
    assert (seen.path, seen.api_key, seen.authorization) == (
        "/v1/chat/completions",
        UPSTREAM_KEY,
        None,
    )


@pytest.mark.parametrize(
    "fields",
    [
        {"type": "openai", "api_version": "2024-10-21"},  # only Azure has one
        {"type": "azure", "api_version": "last tuesday"},
        {"type": "anthropic-someday"},
    ],
)
def test_a_wrong_type_or_version_is_refused(
    gateway: LiveGateway, mock_upstream: MockServer, fields: dict[str, str]
) -> None:
    response = gateway.http.post(
        "/api/admin/channels",
        json={"name": "x", "base_url": mock_upstream.base_url(), "api_key": "sk-x", **fields},
        headers=gateway.admin,
    )
    assert response.status_code == 422, response.text


def test_an_openai_channel_cannot_get_a_version_by_update(
    gateway: LiveGateway, mock_upstream: MockServer
) -> None:
    channel = gateway.create_channel(base_url=mock_upstream.base_url())
    refused = gateway.http.patch(
        f"/api/admin/channels/{channel['id']}",
        json={"api_version": "2024-10-21"},
        headers=gateway.admin,
    )
    assert refused.status_code == 422
    moved = gateway.http.patch(
        f"/api/admin/channels/{channel['id']}",
        json={
            "type": "azure",
            "api_version": "2024-10-21",
            "base_url": mock_upstream.base_url().removesuffix("/v1"),
        },
        headers=gateway.admin,
    )
    assert moved.status_code == 200, moved.text
    with _client(gateway, gateway.create_key()) as client:
        client.chat.completions.create(model="mock-gpt", messages=MESSAGES)  # type: ignore[arg-type]
    assert (
        mock_upstream.state.chat_requests()[-1].path
        == "/openai/deployments/mock-gpt/chat/completions"
    )
