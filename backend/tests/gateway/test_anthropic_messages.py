"""`/v1/messages` with the official `anthropic` SDK, against a Chat Completions channel (the mock)."""

from __future__ import annotations

import base64

import anthropic
import pytest

from app.devtools.mock_upstream import MockServer
from tests.live import GatewayFactory, LiveGateway

WEATHER_TOOL = {
    "name": "get_weather",
    "description": "The weather in a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 16).decode()


@pytest.fixture
def ready(gateway: LiveGateway, mock_upstream: MockServer) -> tuple[LiveGateway, str]:
    gateway.create_channel(
        base_url=mock_upstream.base_url(),
        models=["mock-gpt", "mock-reasoner", "mock-tools"],
        model_mapping={"claude-sonnet-4-5": "mock-gpt"},
    )
    return gateway, gateway.create_key()


def _client(gateway: LiveGateway, key: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gateway.url, api_key=key, max_retries=0)


def test_a_message_with_a_system_prompt(
    ready: tuple[LiveGateway, str], mock_upstream: MockServer
) -> None:
    gateway, key = ready
    with _client(gateway, key) as client:
        message = client.messages.create(
            model="claude-sonnet-4-5",
            max_tokens=256,
            system=[{"type": "text", "text": "Be brief."}],
            messages=[{"role": "user", "content": "hello there"}],
            stop_sequences=["END"],
            extra_body={"temperature": 0.2},
            metadata={"user_id": "u-42"},
        )
    assert message.type == "message"
    assert message.role == "assistant"
    assert message.model == "claude-sonnet-4-5"
    assert [block.type for block in message.content] == ["text"]
    assert message.content[0].text == "Hello from the mock upstream."  # type: ignore[union-attr]
    assert message.stop_reason == "end_turn"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (4, 8)
    sent = mock_upstream.state.chat_requests()[-1].body
    assert sent["model"] == "mock-gpt"
    assert sent["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "hello there"},
    ]
    assert (sent["max_tokens"], sent["temperature"], sent["stop"], sent["user"]) == (
        256,
        0.2,
        ["END"],
        "u-42",
    )
    (row,) = gateway.wait_for_logs(1)
    assert (row.requested_model, row.upstream_model, row.end_reason) == (
        "claude-sonnet-4-5",
        "mock-gpt",
        "done",
    )
    assert (row.prompt_tokens, row.completion_tokens, row.usage_source) == (4, 8, "provider")


def test_a_streamed_message(ready: tuple[LiveGateway, str]) -> None:
    gateway, key = ready
    with (
        _client(gateway, key) as client,
        client.messages.stream(
            model="mock-gpt", max_tokens=100, messages=[{"role": "user", "content": "hi"}]
        ) as stream,
    ):
        names = [event.type for event in stream]
        final = stream.get_final_message()
    assert names[0] == "message_start"
    assert names[-2:] == ["message_delta", "message_stop"]
    assert "content_block_start" in names
    assert "content_block_stop" in names
    assert final.content[0].text == "Hello from the mock upstream. Hello from the"  # type: ignore[union-attr]
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == 8
    assert final.usage.input_tokens == 1
    (row,) = gateway.wait_for_logs(1)
    assert (row.stream, row.end_reason, row.completion_tokens) == (True, "done", 8)
    assert row.ttft_ms is not None


@pytest.mark.parametrize("streamed", [False, True])
def test_thinking_comes_first_as_its_own_block(
    ready: tuple[LiveGateway, str], streamed: bool
) -> None:
    gateway, key = ready
    request = {
        "model": "mock-reasoner",
        "max_tokens": 2048,
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "messages": [{"role": "user", "content": "think"}],
    }
    with _client(gateway, key) as client:
        if streamed:
            with client.messages.stream(**request) as stream:  # type: ignore[arg-type]
                message = stream.get_final_message()
        else:
            message = client.messages.create(**request)  # type: ignore[arg-type]
    assert [block.type for block in message.content] == ["thinking", "text"]
    assert message.content[0].thinking  # type: ignore[union-attr]
    assert message.content[1].text.startswith("Hello")  # type: ignore[union-attr]


@pytest.mark.parametrize("streamed", [False, True])
def test_tools_round_trip(
    ready: tuple[LiveGateway, str], mock_upstream: MockServer, streamed: bool
) -> None:
    gateway, key = ready
    request = {
        "model": "mock-tools",
        "max_tokens": 256,
        "tools": [WEATHER_TOOL],
        "tool_choice": {"type": "any", "disable_parallel_tool_use": True},
        "messages": [{"role": "user", "content": "Weather in Shanghai?"}],
    }
    with _client(gateway, key) as client:
        if streamed:
            with client.messages.stream(**request) as stream:  # type: ignore[arg-type]
                message = stream.get_final_message()
        else:
            message = client.messages.create(**request)  # type: ignore[arg-type]
        assert message.stop_reason == "tool_use"
        (use,) = [block for block in message.content if block.type == "tool_use"]
        assert (use.name, use.input) == ("get_weather", {"city": "Shanghai"})
        sent = mock_upstream.state.chat_requests()[-1].body
        assert sent["tools"] == [
            {
                "type": "function",
                "function": {
                    "name": "get_weather",
                    "parameters": WEATHER_TOOL["input_schema"],
                    "description": "The weather in a city",
                },
            }
        ]
        assert (sent["tool_choice"], sent["parallel_tool_calls"]) == ("required", False)
        # The result goes back; the channel gets it as a tool message right after the call.
        client.messages.create(
            model="mock-gpt",
            max_tokens=256,
            tools=[WEATHER_TOOL],  # type: ignore[list-item]
            messages=[
                {"role": "user", "content": "Weather in Shanghai?"},
                {"role": "assistant", "content": message.content},  # type: ignore[typeddict-item]
                {
                    "role": "user",
                    "content": [
                        {"type": "tool_result", "tool_use_id": use.id, "content": "22°C, sunny"},
                        {"type": "text", "text": "And tomorrow?"},
                    ],
                },
            ],
        )
    sent = mock_upstream.state.chat_requests()[-1].body
    assert [m["role"] for m in sent["messages"]] == ["user", "assistant", "tool", "user"]
    assistant = sent["messages"][1]
    assert assistant["tool_calls"][0]["id"] == use.id
    assert assistant["tool_calls"][0]["function"] == {
        "name": "get_weather",
        "arguments": '{"city":"Shanghai"}',
    }
    assert sent["messages"][2] == {"role": "tool", "tool_call_id": use.id, "content": "22°C, sunny"}
    assert sent["messages"][3] == {"role": "user", "content": "And tomorrow?"}


def test_images_and_documents_become_content_parts(
    ready: tuple[LiveGateway, str], mock_upstream: MockServer
) -> None:
    gateway, key = ready
    with _client(gateway, key) as client:
        client.messages.create(
            model="mock-gpt",
            max_tokens=64,
            messages=[
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "image",
                            "source": {"type": "base64", "media_type": "image/png", "data": PNG},
                        },
                        {
                            "type": "image",
                            "source": {"type": "url", "url": "https://example.com/cat.jpg"},
                        },
                        {
                            "type": "document",
                            "source": {
                                "type": "base64",
                                "media_type": "application/pdf",
                                "data": "JVBERi0=",
                            },
                        },
                        {"type": "text", "text": "What is this?"},
                    ],
                }
            ],
        )
    parts = mock_upstream.state.chat_requests()[-1].body["messages"][0]["content"]
    assert parts[0] == {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}}
    assert parts[1] == {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}}
    assert parts[2]["type"] == "file"
    assert parts[2]["file"]["file_data"] == "data:application/pdf;base64,JVBERi0="
    assert parts[3] == {"type": "text", "text": "What is this?"}


def test_errors_are_anthropic_shaped(
    ready: tuple[LiveGateway, str], mock_upstream: MockServer
) -> None:
    gateway, key = ready
    with _client(gateway, key) as client:
        with pytest.raises(anthropic.BadRequestError) as missing:
            client.messages.create(
                model="mock-gpt",
                max_tokens=8,
                messages=[{"role": "system", "content": "x"}],  # type: ignore[list-item]
            )
        with pytest.raises(anthropic.NotFoundError):
            client.messages.create(
                model="no-such-model", max_tokens=8, messages=[{"role": "user", "content": "x"}]
            )
    assert missing.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
    with (
        _client(gateway, "sk-wrong") as stranger,
        pytest.raises(anthropic.AuthenticationError) as refused,
    ):
        stranger.messages.create(
            model="mock-gpt", max_tokens=8, messages=[{"role": "user", "content": "x"}]
        )
    assert refused.value.body["error"]["type"] == "authentication_error"  # type: ignore[index]
    raw = gateway.http.post("/v1/messages", json={"model": "mock-gpt"}, headers={"x-api-key": key})
    assert raw.status_code == 400
    assert raw.json()["type"] == "error"
    assert raw.json()["error"]["type"] == "invalid_request_error"
    assert mock_upstream.state.total == 0  # none of these reached a channel


def test_an_upstream_failure_part_way_is_an_error_event(
    gateway: LiveGateway, mock_upstream: MockServer
) -> None:
    mock_upstream.set_profile("cut", drop_after=3)
    gateway.create_channel(base_url=mock_upstream.base_url("cut"))
    key = gateway.create_key()

    def read_all() -> None:
        with (
            _client(gateway, key) as client,
            client.messages.stream(
                model="mock-gpt", max_tokens=64, messages=[{"role": "user", "content": "hi"}]
            ) as stream,
        ):
            for _ in stream:
                pass

    with pytest.raises(anthropic.APIStatusError):
        read_all()
    raw = gateway.http.post(
        "/v1/messages",
        json={
            "model": "mock-gpt",
            "max_tokens": 64,
            "stream": True,
            "messages": [{"role": "user", "content": "hi"}],
        },
        headers={"x-api-key": key},
    )
    assert "event: error" in raw.text
    assert "event: message_stop" not in raw.text


def test_bearer_keys_and_count_tokens(ready: tuple[LiveGateway, str]) -> None:
    gateway, key = ready
    with anthropic.Anthropic(base_url=gateway.url, auth_token=key, max_retries=0) as client:
        counted = client.messages.count_tokens(
            model="mock-gpt",
            system="You are a helpful assistant.",
            messages=[{"role": "user", "content": "How many tokens is this sentence?"}],
            tools=[WEATHER_TOOL],  # type: ignore[list-item]
        )
        plain = client.messages.count_tokens(
            model="mock-gpt",
            messages=[{"role": "user", "content": "How many tokens is this sentence?"}],
        )
    assert counted.input_tokens > plain.input_tokens > 0
    limited = gateway.http.post(
        "/api/keys", json={"name": "narrow", "models": ["mock-tools"]}, headers=gateway.admin
    ).json()["key"]
    refused = gateway.http.post(
        "/v1/messages/count_tokens",
        json={"model": "mock-gpt", "messages": [{"role": "user", "content": "x"}]},
        headers={"x-api-key": limited},
    )
    assert refused.status_code == 403
    assert refused.json()["error"]["type"] == "permission_error"


def test_refusals_before_the_endpoint_are_anthropic_shaped_too(
    gateway_factory: GatewayFactory, mock_upstream: MockServer
) -> None:
    """The body-size limit (413) and the per-address rate (429) answer before any endpoint runs."""
    gateway = gateway_factory(server={"max_body_bytes": 4096}, runtime={"ip_rpm": 3})
    gateway.create_channel(base_url=mock_upstream.base_url())
    key = gateway.create_key()
    big = {
        "model": "mock-gpt",
        "max_tokens": 8,
        "messages": [{"role": "user", "content": "x" * 8000}],
    }
    too_large = gateway.http.post("/v1/messages", json=big, headers={"x-api-key": key})
    assert too_large.status_code == 413
    assert too_large.json() == {
        "type": "error",
        "error": {"type": "request_too_large", "message": too_large.json()["error"]["message"]},
    }
    statuses = []
    for _ in range(5):
        answer = gateway.http.post(
            "/v1/messages/count_tokens",
            json={"model": "mock-gpt", "messages": [{"role": "user", "content": "x"}]},
            headers={"x-api-key": key},
        )
        statuses.append(answer.status_code)
    assert statuses[-1] == 429
    assert answer.json()["error"]["type"] == "rate_limit_error"
    openai_path = gateway.http.get("/v1/models", headers={"Authorization": f"Bearer {key}"})
    assert openai_path.status_code == 429
    assert openai_path.json()["error"]["type"] == "rate_limit_error"
    assert "code" in openai_path.json()["error"]  # OpenAI's envelope there
