"""`/v1/embeddings`, `/v1/completions` and `/v1/models/{model}` with the official `openai` SDK."""

from __future__ import annotations

import base64
import struct

import openai
import pytest

from app.devtools.mock_upstream import MockServer
from tests.live import LiveGateway


@pytest.fixture
def ready(gateway: LiveGateway, mock_upstream: MockServer) -> tuple[LiveGateway, str]:
    gateway.create_channel(
        base_url=mock_upstream.base_url(),
        models=["mock-gpt", "text-embedding-3-small", "org/model:v1"],
        model_mapping={"embed": "text-embedding-3-small", "instruct": "mock-gpt"},
    )
    return gateway, gateway.create_key()


def _client(gateway: LiveGateway, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=key, max_retries=0)


def test_embeddings_for_a_string_and_an_array(
    ready: tuple[LiveGateway, str], mock_upstream: MockServer
) -> None:
    gateway, key = ready
    with _client(gateway, key) as client:
        one = client.embeddings.create(model="embed", input="the quick brown fox")
        many = client.embeddings.create(
            model="text-embedding-3-small",
            input=["one", "two words", "three more words"],
            dimensions=4,
        )
        tokens = client.embeddings.create(
            model="embed", input=[[1, 2, 3], [4, 5]], encoding_format="float"
        )
    assert one.model == "embed"  # the name the caller used, not the mapped one
    assert len(one.data) == 1
    assert len(one.data[0].embedding) == 8
    assert one.usage.prompt_tokens == 4
    assert [len(item.embedding) for item in many.data] == [4, 4, 4]
    assert [item.index for item in many.data] == [0, 1, 2]
    assert len(tokens.data) == 2
    seen = [r for r in mock_upstream.state.requests if r.path.endswith("/embeddings")]
    assert [r.body["model"] for r in seen] == ["text-embedding-3-small"] * 3
    assert seen[1].body["dimensions"] == 4  # passed through
    rows = gateway.wait_for_logs(3)
    assert [(r.requested_model, r.upstream_model, r.stream) for r in rows] == [
        ("embed", "text-embedding-3-small", False),
        ("text-embedding-3-small", "text-embedding-3-small", False),
        ("embed", "text-embedding-3-small", False),
    ]
    assert [(r.prompt_tokens, r.completion_tokens, r.usage_source) for r in rows] == [
        (4, 0, "provider"),
        (6, 0, "provider"),
        (5, 0, "provider"),
    ]


def test_embeddings_as_base64(ready: tuple[LiveGateway, str]) -> None:
    gateway, key = ready
    response = gateway.http.post(
        "/v1/embeddings",
        json={"model": "embed", "input": "abc", "encoding_format": "base64", "dimensions": 3},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert response.status_code == 200, response.text
    encoded = response.json()["data"][0]["embedding"]
    assert len(struct.unpack("<3f", base64.b64decode(encoded))) == 3
    with _client(gateway, key) as client:  # the SDK asks for base64 and decodes it itself
        decoded = client.embeddings.create(model="embed", input="abc", dimensions=3)
    assert len(decoded.data[0].embedding) == 3


def test_embeddings_without_provider_usage_are_estimated(
    gateway: LiveGateway, mock_upstream: MockServer
) -> None:
    mock_upstream.set_profile("quiet", usage="never")
    gateway.create_channel(base_url=mock_upstream.base_url("quiet"), models=["embed"])
    with _client(gateway, gateway.create_key()) as client:
        client.embeddings.create(model="embed", input=["a sentence of several words"] * 3)
    (row,) = gateway.wait_for_logs(1)
    assert row.usage_source == "estimated"
    assert row.prompt_tokens > 0
    assert row.completion_tokens == 0


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "embed"}, "input"),
        ({"model": "embed", "input": []}, "input"),
        ({"model": "embed", "input": [1, "mixed"]}, "input"),
        ({"model": "embed", "input": "x", "encoding_format": "int8"}, "encoding_format"),
        ({"model": "embed", "input": "x", "dimensions": 0}, "dimensions"),
        ({"model": "embed", "input": "x", "stream": True}, "stream"),
        ({"input": "x"}, "model"),
        ({"model": "embed", "input": "x", "api_base": "http://elsewhere"}, "api_base"),
    ],
)
def test_bad_embeddings_requests_are_400_and_reach_no_upstream(
    ready: tuple[LiveGateway, str], mock_upstream: MockServer, body: dict[str, object], param: str
) -> None:
    gateway, key = ready
    response = gateway.http.post(
        "/v1/embeddings", json=body, headers={"Authorization": f"Bearer {key}"}
    )
    assert response.status_code == 400
    assert response.json()["error"]["param"] == param
    assert mock_upstream.state.total == 0
    (row,) = gateway.wait_for_logs(1)
    assert (row.end_reason, row.status_code) == ("rejected", 400)


def test_legacy_completions_non_stream_and_stream(
    ready: tuple[LiveGateway, str], mock_upstream: MockServer
) -> None:
    gateway, key = ready
    with _client(gateway, key) as client:
        completion = client.completions.create(model="instruct", prompt="Say hello", max_tokens=8)
        chunks = list(
            client.completions.create(
                model="instruct",
                prompt=["Say", "hello"],
                stream=True,
                stream_options={"include_usage": True},
            )
        )
        plain = list(client.completions.create(model="mock-gpt", prompt="hi", stream=True))
    assert completion.choices[0].text == "Hello from the mock upstream. Hello from the"
    assert completion.model == "instruct"
    assert completion.usage is not None
    assert completion.usage.prompt_tokens == 2
    streamed = "".join(c.choices[0].text for c in chunks if c.choices)
    assert streamed == "Hello from the mock upstream. Hello from the"
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 8
    assert all(c.usage is None for c in plain)  # usage-only chunk not asked for: dropped
    seen = [r for r in mock_upstream.state.requests if r.path.endswith("/v1/completions")]
    assert [r.body["model"] for r in seen] == ["mock-gpt"] * 3
    assert seen[2].body["stream_options"] == {"include_usage": True}  # asked upstream anyway
    rows = gateway.wait_for_logs(3)
    assert [(r.stream, r.end_reason, r.usage_source, r.completion_tokens) for r in rows] == [
        (False, "done", "provider", 8),
        (True, "done", "provider", 8),
        (True, "done", "provider", 8),
    ]
    assert all(r.ttft_ms is not None for r in rows)


def test_models_retrieve(ready: tuple[LiveGateway, str]) -> None:
    gateway, key = ready
    with _client(gateway, key) as client:
        model = client.models.retrieve("mock-gpt")
        slashed = client.models.retrieve("org/model:v1")
        with pytest.raises(openai.NotFoundError) as missing:
            client.models.retrieve("no-such-model")
    assert (model.id, model.object, model.owned_by) == ("mock-gpt", "model", "ai-chat-gateway")
    assert slashed.id == "org/model:v1"
    assert missing.value.code == "model_not_found"
    # A key limited to some models sees only those.
    limited = gateway.http.post(
        "/api/keys", json={"name": "limited", "models": ["embed"]}, headers=gateway.admin
    ).json()["key"]
    hidden = gateway.http.get("/v1/models/mock-gpt", headers={"Authorization": f"Bearer {limited}"})
    assert hidden.status_code == 404
    shown = gateway.http.get("/v1/models/embed/", headers={"Authorization": f"Bearer {limited}"})
    assert shown.json()["id"] == "embed"
    anonymous = gateway.http.get("/v1/models/mock-gpt")
    assert anonymous.status_code == 401
