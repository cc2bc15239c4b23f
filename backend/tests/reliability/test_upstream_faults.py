"""What the client sees, and what is logged, when a stream goes wrong after it started."""

from __future__ import annotations

import time
from typing import Any

import httpx
import openai
import orjson
import pytest

from app.devtools.mock_upstream import MockServer
from tests.live import LiveGateway

MESSAGES = [{"role": "user", "content": "hello there friend"}]


PROFILE = "faulty"


@pytest.fixture
def key(gateway: LiveGateway, mock_upstream: MockServer) -> str:
    gateway.create_channel(
        base_url=mock_upstream.base_url(PROFILE), idle_timeout=0.5, total_timeout=3
    )
    return gateway.create_key()


def _behave(mock: MockServer, options: str) -> None:
    """Make the channel's upstream behave as `key=value&...` says."""
    mock.set_profile(PROFILE, **dict(pair.split("=", 1) for pair in options.split("&")))


def _raw_stream(gateway: LiveGateway, key: str, model: str, **body: Any) -> list[bytes]:
    """The SSE data payloads exactly as the gateway sent them."""
    name, _, options = model.partition("?")
    if options:
        assert gateway.mock is not None
        _behave(gateway.mock, options)
    model = name
    payloads = []
    with gateway.http.stream(
        "POST",
        "/v1/chat/completions",
        json={"model": model, "messages": MESSAGES, "stream": True, **body},
        headers={"Authorization": f"Bearer {key}"},
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("data: "):
                payloads.append(line[6:].encode())
    return payloads


def _text(payloads: list[bytes]) -> str:
    text = ""
    for payload in payloads:
        if payload == b"[DONE]":
            continue
        parsed = orjson.loads(payload)
        for choice in parsed.get("choices") or []:
            text += choice["delta"].get("content") or ""
    return text


def test_drop_after_n_chunks_gives_n_deltas_then_an_error_and_one_error_row(
    gateway: LiveGateway, key: str
) -> None:
    payloads = _raw_stream(gateway, key, "mock-gpt?drop_after=3")
    assert _text(payloads) == "Hello from the "
    assert payloads[-1] != b"[DONE]"
    error = orjson.loads(payloads[-1])["error"]
    assert error["code"] == "upstream_error"
    with openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=key, max_retries=0) as client:
        stream = client.chat.completions.create(
            model="mock-gpt",
            messages=MESSAGES,  # type: ignore[arg-type]
            stream=True,
        )
        received: list[Any] = []
        with pytest.raises(openai.APIError):
            received.extend(stream)
        assert len([c for c in received if c.choices and c.choices[0].delta.content]) == 3
    rows = gateway.wait_for_logs(2)
    for row in rows:
        assert (row.success, row.end_reason, row.status_code) == (False, "upstream_error", 200)
        assert row.usage_source == "estimated"  # no usage arrived: the partial answer is estimated
        assert row.completion_tokens > 0
        assert row.prompt_tokens > 0


def test_stall_mid_stream_hits_the_idle_timeout(gateway: LiveGateway, key: str) -> None:
    # The stall (5 s) outlasts the idle timeout (0.5 s): had the gateway waited it out, the stream
    # would have ended with [DONE] instead of this error.
    payloads = _raw_stream(gateway, key, "mock-gpt?stall_after=2&stall=5")
    assert _text(payloads) == "Hello from "
    error = orjson.loads(payloads[-1])["error"]
    assert error["code"] == "upstream_timeout"
    # The caller is told in plain words; the call log keeps the detail for admins.
    assert error["message"] == "The model provider did not answer in time"
    (row,) = gateway.wait_for_logs(1)
    assert "sent nothing for 0.5s" in str(row.error_message)
    (row,) = gateway.wait_for_logs(1)
    assert row.end_reason == "timeout"


def test_inband_error_after_a_200_becomes_an_error_frame(gateway: LiveGateway, key: str) -> None:
    payloads = _raw_stream(gateway, key, "mock-gpt?inband_error_after=2")
    assert _text(payloads) == "Hello from "
    error = orjson.loads(payloads[-1])["error"]
    assert "mock in-band failure" in error["message"]
    (row,) = gateway.wait_for_logs(1)
    assert row.end_reason == "upstream_error"
    assert "mock in-band failure" in (row.error_message or "")


@pytest.mark.parametrize("fault", ["split", "crlf", "comments"])
def test_awkward_but_valid_framing_arrives_intact(
    gateway: LiveGateway, key: str, fault: str
) -> None:
    payloads = _raw_stream(gateway, key, f"mock-gpt?malformed={fault}")
    assert _text(payloads) == "Hello from the mock upstream. Hello from the"
    assert payloads[-1] == b"[DONE]"


def test_invalid_json_chunk_is_skipped_not_relayed(gateway: LiveGateway, key: str) -> None:
    payloads = _raw_stream(gateway, key, "mock-gpt?malformed=invalid_json")
    assert b"{not json" not in payloads
    assert _text(payloads) == "Hello from the mock upstream. Hello from the"
    assert payloads[-1] == b"[DONE]"


def test_a_chunk_repeated_forever_is_ended_by_the_total_timeout(
    gateway: LiveGateway, key: str
) -> None:
    payloads = _raw_stream(gateway, key, "mock-gpt?malformed=repeat&interval=0.01")
    error = orjson.loads(payloads[-1])["error"]
    assert error["code"] == "upstream_timeout"
    (row,) = gateway.wait_for_logs(1)
    assert "total timeout" in str(row.error_message)  # not the idle one: chunks never stopped
    assert len(payloads) > 50


@pytest.mark.parametrize(
    ("usage", "expected"),
    [
        ("last", (3, 8, 0, "provider")),
        # Cumulative usage in every chunk: the last one is recorded, not the sum.
        ("every", (3, 8, 0, "provider")),
        ("cached", (3, 8, 1, "provider")),
        ("never", None),
    ],
)
def test_usage_variants_are_recorded_right(
    gateway: LiveGateway, key: str, usage: str, expected: tuple[int, int, int, str] | None
) -> None:
    _raw_stream(gateway, key, f"mock-gpt?usage={usage}")
    (row,) = gateway.wait_for_logs(1)
    recorded = (row.prompt_tokens, row.completion_tokens, row.cached_tokens, row.usage_source)
    if expected is None:
        assert row.usage_source == "estimated"
        assert row.completion_tokens > 0
    else:
        assert recorded == expected


def test_a_providers_zero_is_kept(gateway: LiveGateway, key: str) -> None:
    _raw_stream(gateway, key, "mock-gpt?chunks=0&text=")
    (row,) = gateway.wait_for_logs(1)
    assert (row.completion_tokens, row.usage_source) == (0, "provider")


def test_client_disconnect_closes_the_upstream_and_logs_client_gone(
    gateway: LiveGateway, key: str, mock_upstream: MockServer
) -> None:
    _behave(mock_upstream, "chunks=200&interval=0.05")
    with (
        httpx.Client(base_url=gateway.url, timeout=30) as client,
        client.stream(
            "POST",
            "/v1/chat/completions",
            json={"model": "mock-gpt", "messages": MESSAGES, "stream": True},
            headers={"Authorization": f"Bearer {key}"},
        ) as response,
    ):
        seen = 0
        for line in response.iter_lines():
            if line.startswith("data: "):
                seen += 1
            if seen == 5:
                break
    deadline = time.monotonic() + 5
    record = mock_upstream.state.chat_requests()[-1]
    while not record.finished and time.monotonic() < deadline:
        time.sleep(0.02)
    assert record.finished
    assert record.client_closed, "the mock must see the gateway close the upstream connection"
    assert record.chunks_sent < 40
    (row,) = gateway.wait_for_logs(1)
    assert (row.end_reason, row.status_code, row.success) == ("client_gone", 499, False)
    assert gateway.ctx.gate.in_use == 0


@pytest.mark.parametrize("wait_before_leaving", [0.0, 0.3])
def test_client_leaving_a_non_stream_call_closes_the_upstream(
    gateway: LiveGateway, key: str, mock_upstream: MockServer, wait_before_leaving: float
) -> None:
    """Before the answer starts there is nothing to send: the disconnect itself must be seen,
    whether the client leaves at once or while the upstream is thinking."""
    _behave(mock_upstream, "latency=10")
    with httpx.Client(base_url=gateway.url) as client, pytest.raises(httpx.ReadTimeout):
        client.post(
            "/v1/chat/completions",
            json={"model": "mock-gpt", "messages": MESSAGES},
            headers={"Authorization": f"Bearer {key}"},
            timeout=httpx.Timeout(30, read=max(0.01, wait_before_leaving)),
        )
    (row,) = gateway.wait_for_logs(1)  # written once the call has ended
    # A client that leaves at once may be gone before its body was read, or before the call
    # reached the upstream; if it got there, the upstream connection was closed.
    for record in mock_upstream.state.chat_requests():
        deadline = time.monotonic() + 5
        while not record.finished and time.monotonic() < deadline:
            time.sleep(0.02)
        assert record.finished, "the upstream call must end when the client has gone"
        assert record.client_closed, "closed by the gateway, long before the mock would answer"
    if wait_before_leaving:
        assert mock_upstream.state.chat_requests(), "a client that waited reached the upstream"
    assert (row.end_reason, row.status_code) == ("client_gone", 499)
    assert gateway.ctx.gate.in_use == 0
