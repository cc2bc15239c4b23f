"""What a caller sees of channels: the model it asked for, plain errors, its own usage without
routing details. Admins keep every detail (the call log, the admin export)."""

from __future__ import annotations

import csv
import io
from typing import Any

import openai
import orjson
import pytest

from app.devtools.mock_upstream import MockServer
from tests.live import LiveGateway
from tests.processes import free_port

MESSAGES = [{"role": "user", "content": "hi"}]


def _mapped(gateway: LiveGateway, mock: MockServer, profile: str = "mapped") -> None:
    """A channel that serves the public name `team-model` as the upstream's `mock-gpt`."""
    gateway.create_channel(
        name=profile,
        base_url=mock.base_url(profile),
        models=[],
        model_mapping={"team-model": "mock-gpt"},
    )


def _stream_payloads(gateway: LiveGateway, key: str, **body: Any) -> list[dict[str, Any]]:
    payloads = []
    with gateway.http.stream(
        "POST",
        "/v1/chat/completions",
        json={"messages": MESSAGES, "stream": True, **body},
        headers={"Authorization": f"Bearer {key}"},
    ) as response:
        for line in response.iter_lines():
            if line.startswith("data: ") and line != "data: [DONE]":
                payloads.append(orjson.loads(line[6:]))
    return payloads


def test_a_mapped_model_is_answered_under_the_name_asked_for(
    gateway: LiveGateway, mock_upstream: MockServer
) -> None:
    mock_upstream.set_profile("mapped")
    _mapped(gateway, mock_upstream)
    key = gateway.create_key()
    with openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=key, max_retries=0) as client:
        answer = client.chat.completions.create(model="team-model", messages=MESSAGES)  # type: ignore[arg-type]
        assert answer.model == "team-model"
        chunks = list(
            client.chat.completions.create(
                model="team-model",
                messages=MESSAGES,  # type: ignore[arg-type]
                stream=True,
                stream_options={"include_usage": True},
            )
        )
    assert chunks
    assert {chunk.model for chunk in chunks} == {"team-model"}
    assert chunks[-1].usage is not None  # the usage chunk too
    # The upstream was asked for its own name; the log keeps both, for admins.
    assert {r.model for r in mock_upstream.state.chat_requests()} == {"mock-gpt"}
    rows = gateway.wait_for_logs(2)
    assert {(row.requested_model, row.upstream_model) for row in rows} == {
        ("team-model", "mock-gpt")
    }


def test_an_unmapped_model_keeps_the_providers_own_name(
    gateway: LiveGateway, mock_upstream: MockServer
) -> None:
    mock_upstream.set_profile("plain", chunks=2)
    gateway.create_channel(base_url=mock_upstream.base_url("plain"))
    payloads = _stream_payloads(gateway, gateway.create_key(), model="mock-gpt")
    assert payloads
    assert {p["model"] for p in payloads} == {"mock-gpt"}


@pytest.mark.parametrize("stream", [False, True])
def test_transport_failures_are_told_in_plain_words(
    gateway: LiveGateway, mock_upstream: MockServer, stream: bool
) -> None:
    port = free_port()  # nothing listens there
    gateway.create_channel(name="down", base_url=f"http://127.0.0.1:{port}/v1")
    key = gateway.create_key()
    response = gateway.http.post(
        "/v1/chat/completions",
        json={"model": "mock-gpt", "messages": MESSAGES, "stream": stream},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert response.status_code == 502
    message = response.json()["error"]["message"]
    assert "could not be reached" in message
    for internal in ("127.0.0.1", str(port), "Cannot connect", "ssl:", "Errno"):
        assert internal not in response.text, internal
    (row,) = gateway.wait_for_logs(1)
    assert str(port) in str(row.error_message)  # the admin's log has it all


def test_a_stream_cut_off_midway_is_told_in_plain_words(
    gateway: LiveGateway, mock_upstream: MockServer
) -> None:
    mock_upstream.set_profile("dropping", drop_after=2)
    gateway.create_channel(base_url=mock_upstream.base_url("dropping"))
    payloads = _stream_payloads(gateway, gateway.create_key(), model="mock-gpt")
    error = payloads[-1]["error"]
    assert error["message"] == "The model provider's answer broke off or could not be read"
    (row,) = gateway.wait_for_logs(1)
    assert "connection broke" in str(row.error_message)


def test_the_providers_own_explanation_is_passed_on_with_the_callers_model_name(
    gateway: LiveGateway, mock_upstream: MockServer
) -> None:
    mock_upstream.set_profile(
        "mapped",
        status=400,
        error_message="This model's maximum context length is 8192 tokens ({model})",
    )
    _mapped(gateway, mock_upstream)
    response = gateway.http.post(
        "/v1/chat/completions",
        json={"model": "team-model", "messages": MESSAGES},
        headers={"Authorization": f"Bearer {gateway.create_key()}"},
    )
    assert response.status_code == 400
    message = response.json()["error"]["message"]
    assert "maximum context length is 8192 tokens (team-model)" in message
    assert "mock-gpt" not in response.text


def test_a_callers_own_usage_shows_no_routing_and_plain_errors(
    gateway: LiveGateway, mock_upstream: MockServer
) -> None:
    gateway.create_channel(name="down", base_url=f"http://127.0.0.1:{free_port()}/v1")
    key = gateway.create_key()
    gateway.http.post(
        "/v1/chat/completions",
        json={"model": "mock-gpt", "messages": MESSAGES},
        headers={"Authorization": f"Bearer {key}"},
    )
    gateway.wait_for_logs(1)
    mine = gateway.http.get("/api/usage", headers=gateway.admin).json()["items"]
    assert len(mine) == 1
    assert not {"upstream_model", "channel_id", "channel_name", "channels_tried"} & set(mine[0])
    assert mine[0]["error_message"] == "The model provider failed (502)"
    rows = list(
        csv.reader(
            io.StringIO(
                gateway.http.get("/api/usage/export", headers=gateway.admin).text.lstrip("\ufeff")
            )
        )
    )
    header, line = rows[0], rows[1]
    assert not {"upstream_model", "channel_id", "channels_tried", "user_id"} & set(header)
    assert line[header.index("error_message")] == "The model provider failed (502)"
    # The admin's views keep everything.
    admin = gateway.http.get("/api/admin/logs", headers=gateway.admin).json()["items"][0]
    assert admin["channels_tried"]
    assert "cannot reach upstream" in admin["error_message"]
    admin_csv = gateway.http.get("/api/admin/logs/export", headers=gateway.admin).text
    assert "channels_tried" in admin_csv.splitlines()[0]
    assert "cannot reach upstream" in admin_csv
