"""The official `openai` SDK against the gateway, sync and async, stream and non-stream."""

from __future__ import annotations

import openai
import pytest

from app.devtools.mock_upstream import MockServer
from tests.live import UPSTREAM_KEY, LiveGateway


@pytest.fixture
def ready(gateway: LiveGateway, mock_upstream: MockServer) -> tuple[LiveGateway, str]:
    gateway.create_channel(
        base_url=mock_upstream.base_url(),
        models=["mock-gpt", "mock-reasoner", "mock-tools", "mock-think"],
        model_mapping={"gpt-4o": "mock-gpt"},
    )
    return gateway, gateway.create_key()


def _client(gateway: LiveGateway, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=key, max_retries=0)


def _async_client(gateway: LiveGateway, key: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{gateway.url}/v1", api_key=key, max_retries=0)


def test_sync_non_stream_with_model_mapping(
    ready: tuple[LiveGateway, str], mock_upstream: MockServer
) -> None:
    gateway, key = ready
    with _client(gateway, key) as client:
        completion = client.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "hello there"}]
        )
    assert completion.choices[0].message.content == "Hello from the mock upstream."
    assert completion.usage is not None
    assert completion.usage.prompt_tokens == 2
    seen = mock_upstream.state.chat_requests()[-1]
    assert seen.body["model"] == "mock-gpt"  # the public name was mapped upstream
    assert seen.authorization == f"Bearer {UPSTREAM_KEY}"
    (row,) = gateway.wait_for_logs(1)
    assert (row.requested_model, row.upstream_model, row.stream) == ("gpt-4o", "mock-gpt", False)
    assert (row.status_code, row.end_reason, row.success) == (200, "done", True)
    assert (row.prompt_tokens, row.completion_tokens, row.usage_source) == (2, 8, "provider")


async def test_async_non_stream(ready: tuple[LiveGateway, str]) -> None:
    gateway, key = ready
    async with _async_client(gateway, key) as client:
        completion = await client.chat.completions.create(
            model="mock-gpt", messages=[{"role": "user", "content": "hi"}]
        )
    assert completion.choices[0].message.content == "Hello from the mock upstream."


def test_sync_stream_without_usage_drops_the_usage_chunk(
    ready: tuple[LiveGateway, str], mock_upstream: MockServer
) -> None:
    gateway, key = ready
    with _client(gateway, key) as client:
        chunks = list(
            client.chat.completions.create(
                model="mock-gpt", messages=[{"role": "user", "content": "hi"}], stream=True
            )
        )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello from the mock upstream. Hello from the"  # 8 chunks, words cycled
    assert all(c.choices for c in chunks), "the usage-only chunk must not reach this client"
    assert all(c.usage is None for c in chunks)
    # Upstream was still asked for usage, and the log has the provider's numbers.
    assert mock_upstream.state.chat_requests()[-1].body["stream_options"] == {"include_usage": True}
    (row,) = gateway.wait_for_logs(1)
    assert (row.completion_tokens, row.usage_source, row.end_reason) == (8, "provider", "done")
    assert row.ttft_ms is not None


@pytest.mark.parametrize("style", ["final", "every"])
def test_usage_on_answer_chunks_reaches_only_clients_that_asked(
    gateway: LiveGateway, mock_upstream: MockServer, style: str
) -> None:
    """Usage next to a choice (LiteLLM's finishing chunk, or cumulative usage on every chunk): the
    answer goes on, the usage only to a client that asked for it; the log has it either way."""
    mock_upstream.set_profile(style, usage=style)
    gateway.create_channel(base_url=mock_upstream.base_url(style))
    key = gateway.create_key()
    with _client(gateway, key) as client:
        plain = list(
            client.chat.completions.create(
                model="mock-gpt", messages=[{"role": "user", "content": "hi"}], stream=True
            )
        )
        asked = list(
            client.chat.completions.create(
                model="mock-gpt",
                messages=[{"role": "user", "content": "hi"}],
                stream=True,
                stream_options={"include_usage": True},
            )
        )
    assert all(c.usage is None for c in plain)
    assert plain[-1].choices[0].finish_reason == "stop"  # the finishing chunk itself still came
    text = "".join(c.choices[0].delta.content or "" for c in plain if c.choices)
    assert text == "Hello from the mock upstream. Hello from the"
    assert [c.usage.completion_tokens for c in asked if c.usage][-1] == 8
    rows = gateway.wait_for_logs(2)
    assert [(r.completion_tokens, r.usage_source) for r in rows] == [(8, "provider")] * 2


async def test_async_stream_with_usage(ready: tuple[LiveGateway, str]) -> None:
    gateway, key = ready
    async with _async_client(gateway, key) as client:
        stream = await client.chat.completions.create(
            model="mock-gpt",
            messages=[{"role": "user", "content": "one two three"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = [chunk async for chunk in stream]
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.prompt_tokens == 3
    assert chunks[-1].usage.completion_tokens == 8


def test_unknown_fields_tools_and_multimodal_parts_pass_through(
    ready: tuple[LiveGateway, str], mock_upstream: MockServer
) -> None:
    gateway, key = ready
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            },
        }
    ]
    content = [
        {"type": "text", "text": "what is in this image"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
    ]
    with _client(gateway, key) as client:
        completion = client.chat.completions.create(
            model="mock-tools",
            messages=[{"role": "user", "content": content}],
            tools=tools,  # type: ignore[arg-type]
            tool_choice="auto",
            temperature=0.3,
            seed=7,
            response_format={"type": "text"},
            logprobs=False,
            extra_body={"top_k": 5, "vendor_specific": {"a": [1, 2]}},
        )
    call = completion.choices[0].message.tool_calls
    assert call is not None
    assert call[0].function.name == "get_weather"
    body = mock_upstream.state.chat_requests()[-1].body
    assert body["tools"] == tools
    assert body["messages"][0]["content"] == content
    assert (body["tool_choice"], body["temperature"], body["seed"]) == ("auto", 0.3, 7)
    assert body["response_format"] == {"type": "text"}
    assert body["top_k"] == 5
    assert body["vendor_specific"] == {"a": [1, 2]}


def test_streamed_tool_calls(ready: tuple[LiveGateway, str]) -> None:
    gateway, key = ready
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]
    with _client(gateway, key) as client:
        chunks = list(
            client.chat.completions.create(
                model="mock-tools",
                messages=[{"role": "user", "content": "hi"}],
                tools=tools,  # type: ignore[arg-type]
                stream=True,
            )
        )
    calls = [
        c.choices[0].delta.tool_calls for c in chunks if c.choices and c.choices[0].delta.tool_calls
    ]
    assert calls[0][0].function is not None
    assert calls[0][0].function.name == "lookup"
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_reasoning_content_passes_through(ready: tuple[LiveGateway, str]) -> None:
    gateway, key = ready
    with _client(gateway, key) as client:
        completion = client.chat.completions.create(
            model="mock-reasoner", messages=[{"role": "user", "content": "why"}]
        )
        chunks = list(
            client.chat.completions.create(
                model="mock-reasoner", messages=[{"role": "user", "content": "why"}], stream=True
            )
        )
    message = completion.choices[0].message
    assert getattr(message, "reasoning_content", None) == "Let me think step by step."
    reasoning = "".join(
        getattr(c.choices[0].delta, "reasoning_content", None) or "" for c in chunks if c.choices
    )
    assert reasoning == "Let me think step"  # four reasoning chunks
    rows = gateway.wait_for_logs(2)
    assert all(r.reasoning_tokens == 4 for r in rows)


def test_inline_think_is_split_when_the_channel_asks(
    gateway: LiveGateway, mock_upstream: MockServer
) -> None:
    gateway.create_channel(
        base_url=mock_upstream.base_url(), models=["mock-think"], split_think=True
    )
    key = gateway.create_key()
    with _client(gateway, key) as client:
        completion = client.chat.completions.create(
            model="mock-think", messages=[{"role": "user", "content": "hi"}]
        )
        chunks = list(
            client.chat.completions.create(
                model="mock-think", messages=[{"role": "user", "content": "hi"}], stream=True
            )
        )
    message = completion.choices[0].message
    assert message.content == "Hello from the mock upstream."
    assert getattr(message, "reasoning_content", None) == "The user wants a greeting."
    content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    reasoning = "".join(
        getattr(c.choices[0].delta, "reasoning_content", None) or "" for c in chunks if c.choices
    )
    assert "<think>" not in content
    assert "</think>" not in content
    assert content.startswith("Hello from")
    assert reasoning == "The user wants a greeting."


def test_without_split_the_think_block_stays_in_content(ready: tuple[LiveGateway, str]) -> None:
    gateway, key = ready
    with _client(gateway, key) as client:
        completion = client.chat.completions.create(
            model="mock-think", messages=[{"role": "user", "content": "hi"}]
        )
    assert (completion.choices[0].message.content or "").startswith("<think>")


def test_models_list_applies_the_key_allow_list(ready: tuple[LiveGateway, str]) -> None:
    gateway, key = ready
    with _client(gateway, key) as client:
        everything = sorted(m.id for m in client.models.list())
    assert everything == ["gpt-4o", "mock-gpt", "mock-reasoner", "mock-think", "mock-tools"]
    limited = gateway.create_key(models=["gpt-4o"])
    with _client(gateway, limited) as client:
        assert [m.id for m in client.models.list()] == ["gpt-4o"]
        with pytest.raises(openai.PermissionDeniedError):
            client.chat.completions.create(
                model="mock-gpt", messages=[{"role": "user", "content": "hi"}]
            )


def test_errors_map_to_the_sdk_exception_classes(
    ready: tuple[LiveGateway, str], mock_upstream: MockServer
) -> None:
    gateway, key = ready
    with openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="sk-wrong", max_retries=0) as bad:
        with pytest.raises(openai.AuthenticationError) as auth:
            bad.chat.completions.create(
                model="mock-gpt", messages=[{"role": "user", "content": "x"}]
            )
        assert auth.value.status_code == 401
    with _client(gateway, key) as client:
        with pytest.raises(openai.NotFoundError) as missing:
            client.chat.completions.create(
                model="no-such-model", messages=[{"role": "user", "content": "x"}]
            )
        assert missing.value.code == "model_not_found"
        with pytest.raises(openai.BadRequestError) as bad_request:
            client.chat.completions.create(model="mock-gpt", messages=[])
        assert bad_request.value.param == "messages"
        before = mock_upstream.state.total
        with pytest.raises(openai.BadRequestError):
            client.chat.completions.create(
                model="mock-gpt",
                messages=[{"role": "wizard", "content": "x"}],  # type: ignore[misc,list-item]
            )
        assert mock_upstream.state.total == before


def test_jwt_works_on_v1_too(ready: tuple[LiveGateway, str]) -> None:
    gateway, _ = ready
    token = gateway.admin["Authorization"].split()[1]
    with _client(gateway, token) as client:
        completion = client.chat.completions.create(
            model="mock-gpt", messages=[{"role": "user", "content": "hi"}]
        )
    assert completion.choices[0].message.content
    (row,) = gateway.wait_for_logs(1)
    assert row.api_key_id is None
    assert row.user_id is not None
