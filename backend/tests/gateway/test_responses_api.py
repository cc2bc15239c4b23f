"""`/v1/responses` with the official `openai` SDK, against a Chat Completions channel (the mock)."""

from __future__ import annotations

import openai
import pytest

from app.devtools.mock_upstream import MockServer
from tests.live import LiveGateway

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}


@pytest.fixture
def ready(gateway: LiveGateway, mock_upstream: MockServer) -> tuple[LiveGateway, str]:
    gateway.create_channel(
        base_url=mock_upstream.base_url(),
        models=["mock-gpt", "mock-reasoner", "mock-tools"],
        model_mapping={"gpt-5": "mock-gpt"},
    )
    return gateway, gateway.create_key()


def _client(gateway: LiveGateway, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=key, max_retries=0)


def test_a_response_kept_retrieved_continued_and_deleted(
    ready: tuple[LiveGateway, str], mock_upstream: MockServer
) -> None:
    gateway, key = ready
    with _client(gateway, key) as client:
        first = client.responses.create(
            model="gpt-5",
            instructions="Answer briefly.",
            input="Hello there",
            max_output_tokens=64,
            temperature=0.3,
        )
        assert first.object == "response"
        assert first.status == "completed"
        assert first.model == "gpt-5"
        assert first.output_text == "Hello from the mock upstream."
        assert first.usage is not None
        assert (first.usage.input_tokens, first.usage.output_tokens) == (4, 8)
        sent = mock_upstream.state.chat_requests()[-1].body
        assert sent["model"] == "mock-gpt"
        assert sent["messages"] == [
            {"role": "system", "content": "Answer briefly."},
            {"role": "user", "content": "Hello there"},
        ]
        assert (sent["max_tokens"], sent["temperature"]) == (64, 0.3)

        kept = client.responses.retrieve(first.id)
        assert kept.id == first.id
        assert kept.output_text == first.output_text

        follow = client.responses.create(
            model="gpt-5", previous_response_id=first.id, input="And again?"
        )
        sent = mock_upstream.state.chat_requests()[-1].body
        assert [m["role"] for m in sent["messages"]] == ["user", "assistant", "user"]
        assert sent["messages"][1]["content"] == "Hello from the mock upstream."
        assert follow.previous_response_id == first.id

        client.responses.delete(first.id)
        with pytest.raises(openai.NotFoundError):
            client.responses.retrieve(first.id)
        with pytest.raises(openai.NotFoundError) as gone:
            client.responses.create(model="gpt-5", previous_response_id=first.id, input="x")
        assert gone.value.code == "response_not_found"
    # Not kept when asked not to; another user's responses are not visible.
    with _client(gateway, key) as client:
        unkept = client.responses.create(model="gpt-5", input="hi", store=False)
        with pytest.raises(openai.NotFoundError):
            client.responses.retrieve(unkept.id)
    other_user = gateway.create_user_key()
    with _client(gateway, other_user) as stranger, pytest.raises(openai.NotFoundError):
        stranger.responses.retrieve(follow.id)
    rows = gateway.wait_for_logs(4)
    assert [(r.requested_model, r.end_reason) for r in rows] == [
        ("gpt-5", "done"),
        ("gpt-5", "done"),
        ("", "rejected"),  # the follow-up to a deleted response: refused before routing
        ("gpt-5", "done"),
    ]


def test_a_streamed_response(ready: tuple[LiveGateway, str]) -> None:
    gateway, key = ready
    with _client(gateway, key) as client:
        events = list(client.responses.create(model="mock-reasoner", input="think", stream=True))
        with client.responses.stream(model="mock-gpt", input="hi") as stream:
            text = "".join(e.delta for e in stream if e.type == "response.output_text.delta")
            final = stream.get_final_response()
        kept = client.responses.retrieve(final.id)
    kinds = [e.type for e in events]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] == "response.completed"
    assert "response.reasoning_summary_text.delta" in kinds
    assert "response.output_text.delta" in kinds
    assert [e.sequence_number for e in events] == list(range(len(events)))
    completed = events[-1].response  # type: ignore[union-attr]
    assert [item.type for item in completed.output] == ["reasoning", "message"]
    assert completed.usage.output_tokens == 12
    assert text == "Hello from the mock upstream. Hello from the"
    assert final.output_text == text
    assert kept.output_text == text
    rows = gateway.wait_for_logs(2)
    assert all(r.stream and r.end_reason == "done" for r in rows)


@pytest.mark.parametrize("streamed", [False, True])
def test_function_calls_and_their_outputs(
    ready: tuple[LiveGateway, str], mock_upstream: MockServer, streamed: bool
) -> None:
    gateway, key = ready
    with _client(gateway, key) as client:
        if streamed:
            with client.responses.stream(
                model="mock-tools",
                input="Weather in Shanghai?",
                tools=[WEATHER],
                tool_choice="required",  # type: ignore[list-item]
            ) as stream:
                first = stream.get_final_response()
        else:
            first = client.responses.create(
                model="mock-tools",
                input="Weather in Shanghai?",
                tools=[WEATHER],
                tool_choice="required",  # type: ignore[list-item]
            )
        (call,) = [item for item in first.output if item.type == "function_call"]
        assert (call.name, call.arguments) == ("get_weather", '{"city": "Shanghai"}')
        sent = mock_upstream.state.chat_requests()[-1].body
        assert sent["tools"][0]["function"]["name"] == "get_weather"
        assert sent["tool_choice"] == "required"
        client.responses.create(
            model="mock-gpt",
            previous_response_id=first.id,
            input=[{"type": "function_call_output", "call_id": call.call_id, "output": "22°C"}],
            tools=[WEATHER],  # type: ignore[list-item]
        )
    sent = mock_upstream.state.chat_requests()[-1].body
    assert [m["role"] for m in sent["messages"]] == ["user", "assistant", "tool"]
    assert sent["messages"][1]["tool_calls"][0]["id"] == call.call_id
    assert sent["messages"][2] == {"role": "tool", "tool_call_id": call.call_id, "content": "22°C"}


def test_structured_output_and_input_items(
    ready: tuple[LiveGateway, str], mock_upstream: MockServer
) -> None:
    gateway, key = ready
    schema = {
        "type": "object",
        "properties": {"answer": {"type": "string"}},
        "required": ["answer"],
    }
    with _client(gateway, key) as client:
        client.responses.create(
            model="mock-gpt",
            input=[
                {"role": "developer", "content": "Be exact."},
                {
                    "role": "user",
                    "content": [
                        {"type": "input_text", "text": "What is in "},
                        {
                            "type": "input_image",
                            "image_url": "https://example.com/a.png",
                            "detail": "low",
                        },
                    ],
                },
            ],
            text={
                "format": {
                    "type": "json_schema",
                    "name": "answer",
                    "schema": schema,
                    "strict": True,
                }
            },
            reasoning={"effort": "low"},
        )
    sent = mock_upstream.state.chat_requests()[-1].body
    assert sent["messages"][0] == {"role": "system", "content": "Be exact."}
    assert sent["messages"][1]["content"][1] == {
        "type": "image_url",
        "image_url": {"url": "https://example.com/a.png", "detail": "low"},
    }
    assert sent["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "answer", "schema": schema, "strict": True},
    }
    assert sent["reasoning_effort"] == "low"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "mock-gpt"}, "input"),
        ({"model": "mock-gpt", "input": []}, "input"),
        ({"model": "mock-gpt", "input": "x", "tools": [{"type": "web_search"}]}, "tools[0]"),
        (
            {"model": "mock-gpt", "input": [{"type": "message", "role": "robot", "content": "x"}]},
            "input[0]",
        ),
        ({"model": "mock-gpt", "input": "x", "text": {"format": {"type": "xml"}}}, "text"),
        ({"model": "mock-gpt", "input": "x", "max_output_tokens": 0}, "max_output_tokens"),
    ],
)
def test_bad_requests_are_400_and_reach_no_channel(
    ready: tuple[LiveGateway, str], mock_upstream: MockServer, body: dict[str, object], param: str
) -> None:
    gateway, key = ready
    response = gateway.http.post(
        "/v1/responses", json=body, headers={"Authorization": f"Bearer {key}"}
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param
    assert mock_upstream.state.total == 0
