"""Anthropic channels: OpenAI (and Anthropic) clients through the gateway to the Messages API."""

from __future__ import annotations

import json

import anthropic
import openai
import pytest

from app.devtools.mock_upstream import MockServer
from tests.live import UPSTREAM_KEY, LiveGateway

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


@pytest.fixture
def ready(gateway: LiveGateway, mock_upstream: MockServer) -> tuple[LiveGateway, str]:
    gateway.create_channel(
        type="anthropic",
        base_url=mock_upstream.base_url(),
        models=["mock-gpt", "mock-reasoner", "mock-tools"],
        model_mapping={"claude": "mock-gpt"},
    )
    return gateway, gateway.create_key()


def _openai(gateway: LiveGateway, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=key, max_retries=0)


def test_chat_completions_reach_the_messages_api(
    ready: tuple[LiveGateway, str], mock_upstream: MockServer
) -> None:
    gateway, key = ready
    with _openai(gateway, key) as client:
        answer = client.chat.completions.create(
            model="claude",
            messages=[
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "hello there"},
                {"role": "assistant", "content": "Hi."},
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "again"},
                        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                    ],
                },
            ],
            max_tokens=100,
            stop="END",
        )
    assert answer.choices[0].message.content == "Hello from the mock upstream."
    assert answer.choices[0].finish_reason == "stop"
    assert answer.model == "claude"
    assert answer.usage is not None
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens) == (4, 8)
    (seen,) = [r for r in mock_upstream.state.requests if r.path == "/v1/messages"]
    assert seen.body["system"] == "Be brief."
    assert seen.body["model"] == "mock-gpt"
    assert (seen.body["max_tokens"], seen.body["stop_sequences"]) == (100, ["END"])
    assert [m["role"] for m in seen.body["messages"]] == ["user", "assistant", "user"]
    assert seen.body["messages"][2]["content"][1] == {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"},
    }
    assert seen.authorization is None  # the key went as x-api-key, not as a bearer token
    (row,) = gateway.wait_for_logs(1)
    assert (row.upstream_model, row.usage_source, row.completion_tokens) == (
        "mock-gpt",
        "provider",
        8,
    )


def test_a_stream_with_thinking_and_usage(ready: tuple[LiveGateway, str]) -> None:
    gateway, key = ready
    with _openai(gateway, key) as client:
        chunks = list(
            client.chat.completions.create(
                model="mock-reasoner",
                messages=[{"role": "user", "content": "think"}],
                stream=True,
                stream_options={"include_usage": True},
                reasoning_effort="low",
            )
        )
    reasoning = "".join(
        getattr(c.choices[0].delta, "reasoning_content", None) or "" for c in chunks if c.choices
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert reasoning
    assert text == "Hello from the mock upstream. Hello from the"
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 8
    (row,) = gateway.wait_for_logs(1)
    assert (row.stream, row.end_reason, row.ttft_ms is not None) == (True, "done", True)


@pytest.mark.parametrize("stream", [False, True])
def test_tool_calls_both_ways(
    ready: tuple[LiveGateway, str], mock_upstream: MockServer, stream: bool
) -> None:
    gateway, key = ready
    with _openai(gateway, key) as client:
        request = {
            "model": "mock-tools",
            "messages": [{"role": "user", "content": "Weather?"}],
            "tools": [WEATHER],
            "tool_choice": "required",
        }
        if stream:
            chunks = list(client.chat.completions.create(**request, stream=True))  # type: ignore[call-overload]
            calls = [
                c.choices[0].delta.tool_calls
                for c in chunks
                if c.choices and c.choices[0].delta.tool_calls
            ]
            name = calls[0][0].function.name
            arguments = "".join(call[0].function.arguments or "" for call in calls)
            call_id = calls[0][0].id
        else:
            answer = client.chat.completions.create(**request)  # type: ignore[call-overload]
            (call,) = answer.choices[0].message.tool_calls
            name, arguments, call_id = call.function.name, call.function.arguments, call.id
            assert answer.choices[0].finish_reason == "tool_calls"
        assert name == "get_weather"
        assert json.loads(arguments) == {"city": "Shanghai"}
        sent = [r for r in mock_upstream.state.requests if r.path == "/v1/messages"][-1].body
        assert sent["tools"][0]["name"] == "get_weather"
        assert sent["tool_choice"] == {"type": "any"}
        client.chat.completions.create(
            model="mock-gpt",
            messages=[
                {"role": "user", "content": "Weather?"},
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": call_id,
                            "type": "function",
                            "function": {"name": name, "arguments": arguments},
                        }
                    ],
                },
                {"role": "tool", "tool_call_id": call_id, "content": "22°C"},
            ],
        )
    sent = [r for r in mock_upstream.state.requests if r.path == "/v1/messages"][-1].body
    assert sent["messages"][1]["content"][0] == {
        "type": "tool_use",
        "id": call_id,
        "name": "get_weather",
        "input": {"city": "Shanghai"},
    }
    assert sent["messages"][2] == {
        "role": "user",
        "content": [{"type": "tool_result", "tool_use_id": call_id, "content": "22°C"}],
    }


def test_anthropic_clients_too_and_errors_and_the_channel_test(
    ready: tuple[LiveGateway, str], gateway: LiveGateway, mock_upstream: MockServer
) -> None:
    _gateway, key = ready
    with anthropic.Anthropic(base_url=gateway.url, api_key=key, max_retries=0) as client:
        message = client.messages.create(
            model="claude", max_tokens=64, messages=[{"role": "user", "content": "hi"}]
        )
    assert message.content[0].text == "Hello from the mock upstream."  # type: ignore[union-attr]
    embeddings = gateway.http.post(
        "/v1/embeddings",
        json={"model": "mock-gpt", "input": "x"},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert embeddings.status_code == 400
    assert "chat requests only" in embeddings.json()["error"]["message"]
    channels = gateway.http.get("/api/admin/channels", headers=gateway.admin).json()["items"]
    tested = gateway.http.post(
        f"/api/admin/channels/{channels[0]['id']}/test",
        json={"model": "claude"},
        headers=gateway.admin,
    )
    assert tested.json()["ok"] is True, tested.text
    assert UPSTREAM_KEY not in tested.text


def test_failures_fail_over_and_a_break_part_way_ends_with_an_error_frame(
    gateway: LiveGateway, mock_upstream: MockServer
) -> None:
    mock_upstream.set_profile("overloaded", status=529, error_message="Overloaded")
    mock_upstream.set_profile("revoked", status=401)
    mock_upstream.set_profile("cut", drop_after=3)
    busy = gateway.create_channel(
        name="busy", type="anthropic", base_url=mock_upstream.base_url("overloaded"), priority=9
    )
    revoked = gateway.create_channel(
        name="revoked", type="anthropic", base_url=mock_upstream.base_url("revoked"), priority=8
    )
    gateway.create_channel(
        name="fine", type="anthropic", base_url=mock_upstream.base_url(), priority=7
    )
    key = gateway.create_key()
    with _openai(gateway, key) as client:
        answer = client.chat.completions.create(
            model="mock-gpt", messages=[{"role": "user", "content": "hi"}]
        )
    assert answer.choices[0].message.content == "Hello from the mock upstream."
    assert gateway.channel(busy["id"])["status"] == "enabled"  # overloaded: only failed over
    assert gateway.channel(revoked["id"])["status_reason"] == "auth_failed"
    cutter = gateway.create_channel(
        name="cutter",
        type="anthropic",
        base_url=mock_upstream.base_url("cut"),
        models=["mock-slow"],
    )
    assert cutter["type"] == "anthropic"
    streamed = gateway.http.post(
        "/v1/chat/completions",
        json={
            "model": "mock-slow",
            "messages": [{"role": "user", "content": "hi"}],
            "stream": True,
        },
        headers={"Authorization": f"Bearer {key}"},
    )
    assert streamed.status_code == 200
    assert '"error"' in streamed.text.splitlines()[-2]
    assert "[DONE]" not in streamed.text
