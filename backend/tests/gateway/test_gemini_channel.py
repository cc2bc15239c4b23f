"""Gemini channels: clients of every format through the gateway to Gemini's generateContent."""

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


def _gemini_url(mock: MockServer, profile: str | None = None) -> str:
    return (mock.base_url(profile) if profile else mock.base_url()).removesuffix("/v1") + "/v1beta"


@pytest.fixture
def ready(gateway: LiveGateway, mock_upstream: MockServer) -> tuple[LiveGateway, str]:
    gateway.create_channel(
        type="gemini",
        base_url=_gemini_url(mock_upstream),
        models=["mock-gpt", "mock-reasoner", "mock-tools"],
        model_mapping={"gemini-pro": "mock-gpt"},
    )
    return gateway, gateway.create_key()


def _openai(gateway: LiveGateway, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=key, max_retries=0)


def _gemini_requests(mock: MockServer) -> list:  # type: ignore[type-arg]
    return [r for r in mock.state.requests if "/v1beta/models/" in r.path]


def test_chat_goes_to_generate_content(
    ready: tuple[LiveGateway, str], mock_upstream: MockServer
) -> None:
    gateway, key = ready
    with _openai(gateway, key) as client:
        answer = client.chat.completions.create(
            model="gemini-pro",
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
            temperature=0.5,
            response_format={"type": "json_object"},
        )
    assert answer.choices[0].message.content == "Hello from the mock upstream."
    assert answer.model == "gemini-pro"
    assert answer.usage is not None
    assert answer.usage.completion_tokens == 8
    (seen,) = _gemini_requests(mock_upstream)
    assert seen.path == "/v1beta/models/mock-gpt:generateContent"
    assert seen.body["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
    assert [c["role"] for c in seen.body["contents"]] == ["user", "model", "user"]
    assert seen.body["contents"][2]["parts"][1] == {
        "inlineData": {"mimeType": "image/png", "data": "AAAA"}
    }
    assert seen.body["generationConfig"] == {
        "maxOutputTokens": 100,
        "temperature": 0.5,
        "responseMimeType": "application/json",
    }
    assert seen.authorization is None
    (row,) = gateway.wait_for_logs(1)
    assert (row.upstream_model, row.usage_source, row.completion_tokens) == (
        "mock-gpt",
        "provider",
        8,
    )


def test_a_stream_with_thoughts_and_usage(
    ready: tuple[LiveGateway, str], mock_upstream: MockServer
) -> None:
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
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 12  # answer and thoughts
    (seen,) = _gemini_requests(mock_upstream)
    assert seen.path == "/v1beta/models/mock-reasoner:streamGenerateContent"
    assert seen.query == "alt=sse"
    assert seen.body["generationConfig"]["thinkingConfig"] == {
        "thinkingBudget": 1024,
        "includeThoughts": True,
    }


@pytest.mark.parametrize("stream", [False, True])
def test_function_calls_both_ways(
    ready: tuple[LiveGateway, str], mock_upstream: MockServer, stream: bool
) -> None:
    gateway, key = ready
    request = {
        "model": "mock-tools",
        "messages": [{"role": "user", "content": "Weather?"}],
        "tools": [WEATHER],
        "tool_choice": "required",
    }
    with _openai(gateway, key) as client:
        if stream:
            chunks = list(client.chat.completions.create(**request, stream=True))  # type: ignore[call-overload]
            calls = [
                c.choices[0].delta.tool_calls
                for c in chunks
                if c.choices and c.choices[0].delta.tool_calls
            ]
            call_id, name, arguments = (
                calls[0][0].id,
                calls[0][0].function.name,
                calls[0][0].function.arguments,
            )
            assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"
        else:
            answer = client.chat.completions.create(**request)  # type: ignore[call-overload]
            (call,) = answer.choices[0].message.tool_calls
            call_id, name, arguments = call.id, call.function.name, call.function.arguments
            assert answer.choices[0].finish_reason == "tool_calls"
        assert name == "get_weather"
        assert json.loads(arguments) == {"city": "Shanghai"}
        sent = _gemini_requests(mock_upstream)[-1].body
        assert sent["tools"] == [
            {
                "functionDeclarations": [
                    {
                        "name": "get_weather",
                        "description": "The weather in a city",
                        "parameters": WEATHER["function"]["parameters"],
                    }
                ]
            }
        ]
        assert sent["toolConfig"] == {"functionCallingConfig": {"mode": "ANY"}}
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
    sent = _gemini_requests(mock_upstream)[-1].body
    assert sent["contents"][1] == {
        "role": "model",
        "parts": [{"functionCall": {"name": "get_weather", "args": {"city": "Shanghai"}}}],
    }
    assert sent["contents"][2] == {
        "role": "user",
        "parts": [{"functionResponse": {"name": "get_weather", "response": {"content": "22°C"}}}],
    }


def test_other_formats_errors_and_the_channel_test(
    ready: tuple[LiveGateway, str], mock_upstream: MockServer
) -> None:
    gateway, key = ready
    with anthropic.Anthropic(base_url=gateway.url, api_key=key, max_retries=0) as client:
        message = client.messages.create(
            model="gemini-pro", max_tokens=64, messages=[{"role": "user", "content": "hi"}]
        )
    assert message.content[0].text == "Hello from the mock upstream."  # type: ignore[union-attr]
    with _openai(gateway, key) as client:
        response = client.responses.create(model="gemini-pro", input="hi")
    assert response.output_text == "Hello from the mock upstream."
    refused = gateway.http.post(
        "/v1/embeddings",
        json={"model": "mock-gpt", "input": "x"},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert refused.status_code == 400
    channel = gateway.http.get("/api/admin/channels", headers=gateway.admin).json()["items"][0]
    tested = gateway.http.post(
        f"/api/admin/channels/{channel['id']}/test",
        json={"model": "gemini-pro"},
        headers=gateway.admin,
    )
    assert tested.json()["ok"] is True, tested.text
    assert UPSTREAM_KEY not in tested.text


def test_a_stream_cut_off_ends_with_an_error_frame(
    gateway: LiveGateway, mock_upstream: MockServer
) -> None:
    mock_upstream.set_profile("cut", drop_after=3)
    gateway.create_channel(type="gemini", base_url=_gemini_url(mock_upstream, "cut"))
    key = gateway.create_key()
    streamed = gateway.http.post(
        "/v1/chat/completions",
        json={"model": "mock-gpt", "messages": [{"role": "user", "content": "hi"}], "stream": True},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert streamed.status_code == 200
    assert "[DONE]" not in streamed.text
    assert '"error"' in streamed.text
