"""Requests passed through in their own format: `/v1/responses` to a channel that speaks the
Responses API, `/v1/messages` to an Anthropic channel — with the official SDKs, against the mock."""

from __future__ import annotations

import anthropic
import httpx
import openai
import pytest
from sqlalchemy import select

from app.devtools.mock_upstream import MockServer
from app.models import ModelResponse
from tests.live import LiveGateway

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}
SEARCH = {"type": "web_search"}


def _openai(gateway: LiveGateway, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=key, max_retries=0)


def _responses_requests(mock: MockServer) -> list[dict[str, object]]:
    return [r.body for r in mock.state.requests if r.path.endswith("/responses")]


@pytest.fixture
def native(gateway: LiveGateway, mock_upstream: MockServer) -> tuple[LiveGateway, str]:
    gateway.create_channel(
        name="speaks-responses",
        base_url=mock_upstream.base_url(),
        models=["mock-gpt", "mock-reasoner", "mock-tools"],
        model_mapping={"gpt-5": "mock-gpt"},
        responses_api=True,
    )
    return gateway, gateway.create_key()


def test_a_response_passed_through_kept_and_continued(
    native: tuple[LiveGateway, str], mock_upstream: MockServer
) -> None:
    gateway, key = native
    with _openai(gateway, key) as client:
        first = client.responses.create(
            model="gpt-5",
            instructions="Be brief.",
            input="Hello there",
            tools=[SEARCH],
            include=["web_search_call.action.sources"],
            max_output_tokens=64,
        )
        # The provider's answer (its built-in tool's item included), under the gateway's id
        # and the model name the caller used.
        assert first.id.startswith("resp_")
        assert "mock" not in first.id
        assert first.model == "gpt-5"
        assert [item.type for item in first.output] == ["web_search_call", "message"]
        assert first.output_text == "Hello from the mock upstream. Hello from the"
        sent = _responses_requests(mock_upstream)[-1]
        assert sent["model"] == "mock-gpt"
        assert sent["input"] == "Hello there"  # as it came
        assert sent["tools"] == [SEARCH]
        assert sent["include"] == ["web_search_call.action.sources"]
        assert mock_upstream.state.chat_requests() == []

        kept = client.responses.retrieve(first.id)
        assert kept.output_text == first.output_text

        follow = client.responses.create(
            model="gpt-5", previous_response_id=first.id, input="And again?"
        )
        sent = _responses_requests(mock_upstream)[-1]
        assert "previous_response_id" not in sent  # the gateway keeps the conversation
        assert [item.get("type", "message") for item in sent["input"]] == [  # type: ignore[union-attr]
            "message",
            "web_search_call",
            "message",
            "message",
        ]
        assert sent["input"][0] == {"role": "user", "content": "Hello there"}  # type: ignore[index]
        assert sent["input"][-1] == {"role": "user", "content": "And again?"}  # type: ignore[index]
        assert follow.previous_response_id == first.id
    rows = gateway.wait_for_logs(2)
    assert [(r.requested_model, r.upstream_model, r.end_reason) for r in rows] == [
        ("gpt-5", "mock-gpt", "done"),
        ("gpt-5", "mock-gpt", "done"),
    ]
    assert (rows[0].prompt_tokens, rows[0].completion_tokens) == (2, 8)
    assert rows[0].usage_source == "provider"


def test_a_streamed_response_is_relayed_event_for_event(
    native: tuple[LiveGateway, str], mock_upstream: MockServer
) -> None:
    gateway, key = native
    with _openai(gateway, key) as client:
        events = list(client.responses.create(model="mock-reasoner", input="think", stream=True))
        kept = client.responses.retrieve(events[-1].response.id)  # type: ignore[union-attr]
    kinds = [e.type for e in events]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] == "response.completed"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    ends = ("response.created", "response.in_progress", "response.completed")
    ids = {e.response.id for e in events if e.type in ends}  # type: ignore[union-attr]
    assert len(ids) == 1
    assert "mock" not in ids.pop()
    assert kept.output_text == "Hello from the mock upstream. Hello from the"
    assert [item.type for item in kept.output] == ["reasoning", "message"]
    row = gateway.wait_for_logs(1)[0]
    assert (row.stream, row.end_reason, row.completion_tokens, row.reasoning_tokens) == (
        True,
        "done",
        12,
        4,
    )
    assert row.ttft_ms is not None


def test_function_calls_pass_through_both_ways(
    native: tuple[LiveGateway, str], mock_upstream: MockServer
) -> None:
    gateway, key = native
    with _openai(gateway, key) as client:
        first = client.responses.create(model="mock-tools", input="weather?", tools=[WEATHER])
        call = first.output[0]
        assert call.type == "function_call"
        assert call.name == "get_weather"
        with client.responses.stream(
            model="mock-tools",
            previous_response_id=first.id,
            input=[{"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}],
            tools=[WEATHER],
        ) as stream:
            arguments = "".join(
                e.delta for e in stream if e.type == "response.function_call_arguments.delta"
            )
    assert arguments == '{"city": "Shanghai"}'
    sent = _responses_requests(mock_upstream)[-1]["input"]
    assert [item.get("type", "message") for item in sent] == [  # type: ignore[union-attr]
        "message",
        "function_call",
        "function_call_output",
    ]


def test_only_channels_that_speak_it_take_what_chat_cannot_carry(
    gateway: LiveGateway, mock_upstream: MockServer
) -> None:
    """A built-in tool: refused (400, nothing sent) when only a translating channel serves the
    model; passed through when a channel speaks the Responses API — never to a chat channel."""
    gateway.create_channel(name="chat-only", base_url=mock_upstream.base_url(), models=["a", "b"])
    key = gateway.create_key()
    with _openai(gateway, key) as client:
        with pytest.raises(openai.BadRequestError) as refused:
            client.responses.create(model="a", input="hi", tools=[SEARCH])
        assert refused.value.body["param"] == "tools[0]"  # type: ignore[index]
        assert "built-in tools" in refused.value.message
        assert mock_upstream.state.total == 0
        gateway.create_channel(
            name="native",
            base_url=mock_upstream.base_url(),
            models=["b"],
            priority=-5,  # tried after the chat channel for anything either can take
            responses_api=True,
        )
        searched = client.responses.create(model="b", input="hi", tools=[SEARCH])
        assert [item.type for item in searched.output] == ["web_search_call", "message"]
        translated = client.responses.create(model="b", input="hi")
        # Continued on a chat channel: what chat cannot carry (the search call) is left out.
        client.responses.create(model="a", input="more?", previous_response_id=searched.id)
    assert mock_upstream.state.total == 3
    chats = mock_upstream.state.chat_requests()
    assert len(chats) == 2  # the plain one went to the chat channel
    assert translated.output_text == "Hello from the mock upstream."
    assert chats[-1].body["messages"] == [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "Hello from the mock upstream. Hello from the"},
        {"role": "user", "content": "more?"},
    ]
    rows = gateway.wait_for_logs(4)
    assert [(r.end_reason, r.status_code) for r in rows] == [
        ("rejected", 400),
        ("done", 200),
        ("done", 200),
        ("done", 200),
    ]


def test_failover_from_a_native_channel_to_a_translating_one(
    gateway: LiveGateway, mock_upstream: MockServer
) -> None:
    mock_upstream.set_profile("down", status=503)
    gateway.create_channel(
        name="native-down",
        base_url=mock_upstream.base_url("down"),
        models=["mock-gpt"],
        priority=10,
        responses_api=True,
    )
    gateway.create_channel(name="chat", base_url=mock_upstream.base_url(), models=["mock-gpt"])
    key = gateway.create_key()
    with _openai(gateway, key) as client:
        answer = client.responses.create(model="mock-gpt", input="hi")
        streamed = list(client.responses.create(model="mock-gpt", input="hi", stream=True))
    assert answer.output_text == "Hello from the mock upstream."
    assert streamed[-1].type == "response.completed"
    paths = [r.path for r in mock_upstream.state.requests]
    assert paths[:2] == ["/down/v1/responses", "/v1/chat/completions"]
    assert paths.count("/v1/chat/completions") == 2
    rows = gateway.wait_for_logs(2)
    assert len(rows[0].channels_tried) == 2


def test_a_failure_part_way_ends_the_stream_with_an_error_event(
    gateway: LiveGateway, mock_upstream: MockServer
) -> None:
    gateway.create_channel(
        base_url=mock_upstream.base_url(),
        models=["flaky"],
        model_mapping={"flaky": "mock-gpt?inband_error_after=3"},
        responses_api=True,
    )
    key = gateway.create_key()
    with httpx.stream(
        "POST",
        f"{gateway.url}/v1/responses",
        json={"model": "flaky", "input": "hi", "stream": True},
        headers={"Authorization": f"Bearer {key}"},
    ) as stream:
        body = stream.read().decode()
    frames = [f for f in body.split("\n\n") if f]
    assert sum("response.output_text.delta" in f for f in frames) == 3
    assert frames[-1].startswith("event: error\n")
    assert f'"sequence_number":{len(frames) - 1}' in frames[-1]
    assert "mock in-band failure" in frames[-1]
    row = gateway.wait_for_logs(1)[0]
    assert (row.end_reason, row.requested_model) == ("upstream_error", "flaky")


def test_responses_api_is_only_for_openai_and_azure_channels(
    gateway: LiveGateway, mock_upstream: MockServer
) -> None:
    response = gateway.http.post(
        "/api/admin/channels",
        json={
            "name": "x",
            "type": "anthropic",
            "base_url": mock_upstream.base_url(),
            "api_key": "k",
            "models": ["m"],
            "responses_api": True,
        },
        headers=gateway.admin,
    )
    assert response.status_code == 422
    created = gateway.create_channel(type="anthropic", base_url=mock_upstream.base_url())
    assert created["responses_api"] is False
    changed = gateway.http.patch(
        f"/api/admin/channels/{created['id']}", json={"responses_api": True}, headers=gateway.admin
    )
    assert changed.status_code == 422
    assert "responses_api" in changed.text
    assert gateway.channel(created["id"])["responses_api"] is False


def test_azure_responses_go_to_the_resource_endpoint(
    gateway: LiveGateway, mock_upstream: MockServer
) -> None:
    gateway.create_channel(
        type="azure",
        base_url=mock_upstream.url,
        api_version="2025-04-01-preview",
        models=["gpt-5"],
        model_mapping={"gpt-5": "my-deployment"},
        responses_api=True,
    )
    key = gateway.create_key()
    with _openai(gateway, key) as client:
        answer = client.responses.create(model="gpt-5", input="hi", stream=False)
    assert answer.output_text.startswith("Hello from the mock upstream.")
    recorded = mock_upstream.state.requests[-1]
    assert (recorded.path, recorded.query) == (
        "/openai/responses",
        "api-version=2025-04-01-preview",
    )
    assert recorded.body["model"] == "my-deployment"
    assert recorded.api_key is not None


# ── Messages to an Anthropic channel ─────────────────────────────────────────────────────────
@pytest.fixture
def claude(gateway: LiveGateway, mock_upstream: MockServer) -> tuple[LiveGateway, str]:
    gateway.create_channel(
        type="anthropic",
        base_url=mock_upstream.base_url(),
        models=["mock-gpt", "mock-reasoner", "mock-tools"],
        model_mapping={"claude": "mock-gpt"},
    )
    return gateway, gateway.create_key()


def test_messages_reach_an_anthropic_channel_as_they_came(
    claude: tuple[LiveGateway, str], mock_upstream: MockServer
) -> None:
    gateway, key = claude
    system = [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}]
    with anthropic.Anthropic(base_url=gateway.url, api_key=key, max_retries=0) as client:
        message = client.messages.create(
            model="claude",
            max_tokens=100,
            system=system,  # type: ignore[arg-type]
            messages=[{"role": "user", "content": "hello there"}],
            tools=[{"type": "web_search_20250305", "name": "web_search", "max_uses": 2}],  # type: ignore[list-item]
        )
        with client.messages.stream(
            model="mock-reasoner",
            max_tokens=100,
            thinking={"type": "enabled", "budget_tokens": 1024},
            messages=[{"role": "user", "content": "think"}],
        ) as stream:
            kinds = [event.type for event in stream]
            final = stream.get_final_message()
    assert message.id == "msg_mock_1"  # the provider's own answer
    assert message.model == "claude"
    assert message.content[0].text == "Hello from the mock upstream."  # type: ignore[union-attr]
    sent = mock_upstream.state.requests[0].body
    assert sent["system"] == system  # cache_control and all
    assert sent["tools"][0]["type"] == "web_search_20250305"
    assert sent["model"] == "mock-gpt"
    assert kinds[0] == "message_start"
    assert [block.type for block in final.content] == ["thinking", "text"]
    assert final.content[0].signature == "sig"  # type: ignore[union-attr]
    rows = gateway.wait_for_logs(2)
    assert [(r.prompt_tokens, r.completion_tokens, r.usage_source) for r in rows] == [
        (2, 8, "provider"),
        (1, 8, "provider"),
    ]
    assert rows[1].reasoning_tokens == 0  # Anthropic counts thinking within output tokens


def test_a_messages_stream_failing_part_way_ends_with_an_error_event(
    gateway: LiveGateway, mock_upstream: MockServer
) -> None:
    gateway.create_channel(
        type="anthropic",
        base_url=mock_upstream.base_url(),
        models=["claude"],
        model_mapping={"claude": "mock-gpt?drop_after=3"},
    )
    key = gateway.create_key()
    with httpx.stream(
        "POST",
        f"{gateway.url}/v1/messages",
        json={
            "model": "claude",
            "max_tokens": 50,
            "stream": True,
            "messages": [{"role": "user", "content": "hi"}],
        },
        headers={"x-api-key": key, "anthropic-version": "2023-06-01"},
    ) as stream:
        body = stream.read().decode()
    frames = [f for f in body.split("\n\n") if f]
    assert sum('"text_delta"' in f for f in frames) == 3
    assert frames[-1].startswith("event: error\n")
    assert '"type":"api_error"' in frames[-1]
    row = gateway.wait_for_logs(1)[0]
    assert row.end_reason == "upstream_error"


def test_a_response_kept_as_chat_messages_by_an_older_version_is_continued(
    gateway: LiveGateway, mock_upstream: MockServer
) -> None:
    """Kept before responses were kept as items: continued over chat (even on a channel that
    speaks the Responses API); what only a Responses channel could take is refused."""
    gateway.create_channel(base_url=mock_upstream.base_url(), models=["m"], responses_api=True)
    key = gateway.create_key()
    with _openai(gateway, key) as client:
        client.responses.create(model="m", input="first")  # makes the admin's key's user known

    async def keep_legacy() -> None:
        async with gateway.ctx.sessionmaker() as db:
            owner = await db.scalar(select(ModelResponse.user_id))
            db.add(
                ModelResponse(
                    id="resp_legacy",
                    user_id=owner,
                    api_key_id=None,
                    model="m",
                    items=None,
                    messages=[
                        {"role": "user", "content": "old question"},
                        {"role": "assistant", "content": "old answer"},
                    ],
                    body={"id": "resp_legacy"},
                )
            )
            await db.commit()

    gateway.run(keep_legacy)
    with _openai(gateway, key) as client:
        client.responses.create(model="m", input="new", previous_response_id="resp_legacy")
        with pytest.raises(openai.BadRequestError):
            client.responses.create(
                model="m", input="new", previous_response_id="resp_legacy", tools=[SEARCH]
            )
    assert mock_upstream.state.chat_requests()[-1].body["messages"] == [
        {"role": "user", "content": "old question"},
        {"role": "assistant", "content": "old answer"},
        {"role": "user", "content": "new"},
    ]


def test_anthropic_beta_features_reach_an_anthropic_channel(
    claude: tuple[LiveGateway, str], mock_upstream: MockServer
) -> None:
    gateway, key = claude
    body = {"model": "claude", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}
    for betas, status in (
        (["context-1m-2025-08-07", "interleaved-thinking-2025-05-14"], 200),
        (["prompt-caching-2024-07-31, fine-grained-tool-streaming-2025-05-14"], 200),
        (["evil\u00e9", "x"], 400),
        (["a; b=c"], 400),
        (["x" * 1001], 400),
    ):
        headers = [(b"x-api-key", key.encode()), (b"anthropic-version", b"2023-06-01")]
        headers += [(b"anthropic-beta", beta.encode()) for beta in betas]
        response = httpx.post(
            f"{gateway.url}/v1/messages", json=body, headers=httpx.Headers(headers)
        )
        assert response.status_code == status, (betas, response.text)
        if status == 400:
            assert response.json()["type"] == "error"
            assert "anthropic-beta" in response.json()["error"]["message"]
    sent = [r.beta for r in mock_upstream.state.requests]
    assert sent == [
        "context-1m-2025-08-07, interleaved-thinking-2025-05-14",
        "prompt-caching-2024-07-31, fine-grained-tool-streaming-2025-05-14",
    ]
    rows = gateway.wait_for_logs(5)
    assert [r.end_reason for r in rows].count("rejected") == 3


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"conversation": "conv_123"}, "conversation"),
        ({"prompt": {"id": "pmpt_1", "version": "2"}}, "prompt"),
    ],
)
def test_upstream_state_needs_a_responses_channel(
    gateway: LiveGateway, mock_upstream: MockServer, extra: dict[str, object], param: str
) -> None:
    gateway.create_channel(base_url=mock_upstream.base_url(), models=["chat-only"])
    gateway.create_channel(base_url=mock_upstream.base_url(), models=["native"], responses_api=True)
    key = gateway.create_key()
    headers = {"Authorization": f"Bearer {key}"}
    refused = gateway.http.post(
        "/v1/responses", json={"model": "chat-only", "input": "hi", **extra}, headers=headers
    )
    assert refused.status_code == 400
    assert refused.json()["error"]["param"] == param
    assert mock_upstream.state.total == 0
    passed = gateway.http.post(
        "/v1/responses", json={"model": "native", "input": "hi", **extra}, headers=headers
    )
    assert passed.status_code == 200, passed.text
    assert {k: mock_upstream.state.requests[-1].body[k] for k in extra} == extra


def test_background_responses_are_refused(native: tuple[LiveGateway, str]) -> None:
    gateway, key = native
    response = gateway.http.post(
        "/v1/responses",
        json={"model": "mock-gpt", "input": "hi", "background": True},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "background"
