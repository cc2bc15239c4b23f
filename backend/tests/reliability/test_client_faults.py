"""Clients that misbehave: leave before the first token, stop reading, send the same call twice."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time

import httpx
import orjson
import pytest

from app.devtools.mock_upstream import MockServer
from tests.live import GatewayFactory, LiveGateway

MESSAGES = [{"role": "user", "content": "hello there friend"}]


def _wait_finished(mock: MockServer, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    for record in mock.state.chat_requests():
        while not record.finished and time.monotonic() < deadline:
            time.sleep(0.02)
        assert record.finished, "the upstream call must end"


def test_a_client_that_stops_reading_is_dropped_after_the_send_timeout(
    gateway_factory: GatewayFactory, mock_upstream: MockServer
) -> None:
    gateway = gateway_factory(runtime={"send_timeout_seconds": 1.0})
    # An answer of about 40 MB: far more than the sockets between the two can hold.
    word = "x" * 2000
    mock_upstream.set_profile("firehose", text=word, chunks=20_000)
    gateway.create_channel(
        base_url=mock_upstream.base_url("firehose"), idle_timeout=60, total_timeout=120
    )
    key = gateway.create_key()
    body = orjson.dumps({"model": "mock-gpt", "messages": MESSAGES, "stream": True})
    request = (
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Authorization: Bearer " + key.encode() + b"\r\n"
        b"Content-Type: application/json\r\nContent-Length: " + str(len(body)).encode() + b"\r\n"
        b"\r\n" + body
    )
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)
        sock.connect(("127.0.0.1", gateway.port))
        sock.sendall(request)
        assert sock.recv(64).startswith(b"HTTP/1.1 200"), "the stream started"
        # …and then the client reads nothing more, without closing the connection.
        started = time.monotonic()
        (row,) = gateway.wait_for_logs(1, timeout=20)
        waited = time.monotonic() - started
        assert (row.end_reason, row.status_code) == ("client_gone", 499)
        # The rest of what the gateway had buffered, then the end: the connection was aborted.
        sock.settimeout(10)
        received = 0
        with contextlib.suppress(ConnectionResetError):
            while chunk := sock.recv(1 << 20):
                received += len(chunk)
    # Not before the send timeout (how much later depends on the machine's load: no upper bound;
    # a client never dropped fails `wait_for_logs` above).
    assert waited >= 1.0, f"dropped after {waited:.1f}s"
    _wait_finished(mock_upstream)
    (record,) = mock_upstream.state.chat_requests()
    assert record.client_closed, "the gateway closed the upstream call"
    # Backpressure: the gateway read from the upstream only about as much as the sockets between
    # them hold (loopback buffers grow to several MB); it did not take in the 40 MB answer for a
    # client that was not reading.
    assert record.chunks_sent < 10_000, record.chunks_sent
    assert received < 20 * 1024 * 1024
    assert gateway.ctx.gate.in_use == 0
    assert len(gateway.ctx.send_watchdog) == 0
    assert gateway.ctx.send_watchdog.dropped == 1


def _text(lines: list[str]) -> str:
    chunks = [orjson.loads(line[6:]) for line in lines if line != "data: [DONE]"]
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])


@pytest.fixture
def key(gateway: LiveGateway, mock_upstream: MockServer) -> str:
    gateway.create_channel(base_url=mock_upstream.base_url("client"), total_timeout=30)
    return gateway.create_key()


def test_a_stream_left_before_its_first_token_closes_the_upstream(
    gateway: LiveGateway, key: str, mock_upstream: MockServer
) -> None:
    """Headers wait for the upstream's first byte (so a failure can still fail over): a client
    that leaves while the model thinks is seen by the disconnect watcher, not by a write."""
    mock_upstream.set_profile("client", stall_before=10)
    with httpx.Client(base_url=gateway.url) as client, pytest.raises(httpx.ReadTimeout):
        client.post(
            "/v1/chat/completions",
            json={"model": "mock-gpt", "messages": MESSAGES, "stream": True},
            headers={"Authorization": f"Bearer {key}"},
            timeout=httpx.Timeout(30, read=0.5),
        )
    (row,) = gateway.wait_for_logs(1)
    assert (row.end_reason, row.status_code, row.stream) == ("client_gone", 499, True)
    _wait_finished(mock_upstream)
    (record,) = mock_upstream.state.chat_requests()
    assert record.client_closed
    assert record.chunks_sent == 0
    assert gateway.ctx.gate.in_use == 0


async def test_a_double_submit_is_two_calls_each_answered_and_logged_once(
    gateway: LiveGateway, key: str, mock_upstream: MockServer
) -> None:
    """/v1 is stateless: the same call sent twice at once is two calls (clients retry on their
    own), each with its own answer and its own log row; neither blocks nor corrupts the other."""
    mock_upstream.set_profile("client", chunks=6, interval=0.02)
    body = {"model": "mock-gpt", "messages": MESSAGES, "stream": True}
    async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as client:

        async def send() -> list[str]:
            async with client.stream(
                "POST",
                "/v1/chat/completions",
                json=body,
                headers={"Authorization": f"Bearer {key}"},
            ) as response:
                assert response.status_code == 200
                return [line async for line in response.aiter_lines() if line.startswith("data: ")]

        first, second = await asyncio.gather(send(), send())
    assert first[-1] == second[-1] == "data: [DONE]"
    assert len(first) == len(second) > 6
    assert _text(first) == _text(second) != ""
    rows = gateway.wait_for_logs(2)
    assert len(rows) == 2
    assert len({row.request_id for row in rows}) == 2
    assert all(row.end_reason == "done" for row in rows)
    assert mock_upstream.state.total == 2


def test_a_client_that_leaves_while_sending_its_body_is_logged_and_reaches_nothing(
    gateway: LiveGateway, key: str, mock_upstream: MockServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Half a request: nothing reaches the upstream, the call is logged as `client_gone` (no
    model is known), no error is logged, and the gateway serves the next call as usual."""
    body = orjson.dumps({"model": "mock-gpt", "messages": MESSAGES})
    head = (
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Authorization: Bearer " + key.encode() + b"\r\n"
        b"Content-Type: application/json\r\nContent-Length: " + str(len(body)).encode() + b"\r\n"
        b"\r\n"
    )
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.connect(("127.0.0.1", gateway.port))
        sock.sendall(head + body[: len(body) // 2])
        time.sleep(0.3)
    (left,) = gateway.wait_for_logs(1)
    assert (left.end_reason, left.status_code, left.requested_model) == ("client_gone", 499, "")
    response = httpx.post(
        f"{gateway.url}/v1/chat/completions",
        json={"model": "mock-gpt", "messages": MESSAGES},
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )
    assert response.status_code == 200
    rows = gateway.wait_for_logs(2)
    assert [r.end_reason for r in rows] == ["client_gone", "done"]
    assert mock_upstream.state.total == 1
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
    assert gateway.ctx.gate.in_use == 0
