"""Load: the concurrency gate under 200 streams, every channel failing at once, limit and usage
counters under 100 concurrent calls."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from app.devtools.mock_upstream import MockServer
from tests.live import GatewayFactory, LiveGateway

MESSAGES = [{"role": "user", "content": "hi"}]


def _served(
    factory: GatewayFactory, mock: MockServer, runtime: dict[str, Any], **behaviour: Any
) -> tuple[LiveGateway, str]:
    """A gateway with these runtime settings, one channel whose upstream behaves so, and a key."""
    gateway = factory(runtime=runtime)
    mock.set_profile("load", **behaviour)
    gateway.create_channel(base_url=mock.base_url("load"))
    return gateway, gateway.create_key()


async def _call(client: httpx.AsyncClient, key: str, *, stream: bool) -> httpx.Response:
    return await client.post(
        "/v1/chat/completions",
        json={"model": "mock-gpt", "messages": MESSAGES, "stream": stream},
        headers={"Authorization": f"Bearer {key}"},
    )


async def test_the_upstream_never_sees_more_than_the_gate_size(
    gateway_factory: GatewayFactory, mock_upstream: MockServer
) -> None:
    gateway, key = _served(
        gateway_factory,
        mock_upstream,
        {"llm_concurrency": 3, "queue_timeout_seconds": 30},
        chunks=5,
        interval=0.05,
    )
    async with httpx.AsyncClient(base_url=gateway.url, timeout=60) as client:
        responses = await asyncio.gather(
            *(_call(client, key, stream=i % 2 == 0) for i in range(12))
        )
    assert [r.status_code for r in responses] == [200] * 12
    assert mock_upstream.state.total == 12
    assert mock_upstream.state.max_in_flight == 3
    assert gateway.ctx.gate.in_use == 0


async def test_waiters_get_503_with_retry_after_and_health_stays_fast(
    gateway_factory: GatewayFactory, mock_upstream: MockServer
) -> None:
    gateway, key = _served(
        gateway_factory,
        mock_upstream,
        {"llm_concurrency": 2, "queue_timeout_seconds": 0.3},
        chunks=3,
        interval=0.5,
    )
    async with httpx.AsyncClient(base_url=gateway.url, timeout=60) as client:
        calls = [asyncio.ensure_future(_call(client, key, stream=True)) for _ in range(6)]
        await asyncio.sleep(0.1)
        health = await client.get("/healthz")
        # Answered while the gate was full: the two admitted streams (1.5 s each) still run.
        still_running = sum(not call.done() for call in calls)
        responses = await asyncio.gather(*calls)
    assert health.status_code == 200
    assert still_running >= 2
    busy = [r for r in responses if r.status_code == 503]
    assert len(busy) == 4
    assert all(r.headers["retry-after"] == "2" for r in busy)
    assert all(r.json()["error"]["code"] == "gateway_busy" for r in busy)
    assert mock_upstream.state.max_in_flight == 2
    rows = gateway.wait_for_logs(6)
    assert sorted(r.end_reason for r in rows) == ["done", "done"] + ["rejected"] * 4


async def test_200_concurrent_streams_saturate_the_gate_and_nothing_else(
    gateway_factory: GatewayFactory, mock_upstream: MockServer
) -> None:
    """200 streams against a gate of 20: the upstream never sees more than 20, `/healthz` answers
    while the gate is full, the rest wait and then get 503 — and every call is logged once."""
    gateway, key = _served(
        gateway_factory,
        mock_upstream,
        {"llm_concurrency": 20, "queue_timeout_seconds": 0.5},
        chunks=4,
        interval=0.5,
    )
    limits = httpx.Limits(max_connections=250, max_keepalive_connections=250)
    async with httpx.AsyncClient(base_url=gateway.url, timeout=60, limits=limits) as client:

        async def one() -> tuple[int, str]:
            async with client.stream(
                "POST",
                "/v1/chat/completions",
                json={"model": "mock-gpt", "messages": MESSAGES, "stream": True},
                headers={"Authorization": f"Bearer {key}"},
            ) as response:
                body = (await response.aread()).decode()
                return response.status_code, body

        calls = [asyncio.ensure_future(one()) for _ in range(200)]
        while gateway.ctx.gate.in_use < 20:  # noqa: ASYNC110 (a counter of the server's thread)
            await asyncio.sleep(0.02)
        health = await client.get("/healthz")
        ready = await client.get("/readyz")
        running_while_healthy = sum(not call.done() for call in calls)
        results = await asyncio.gather(*calls)
    assert health.status_code == 200
    assert ready.status_code == 200
    assert running_while_healthy >= 20
    assert mock_upstream.state.max_in_flight == 20
    statuses = sorted(status for status, _ in results)
    assert statuses.count(200) >= 20
    assert set(statuses) == {200, 503}
    assert all(body.rstrip().endswith("data: [DONE]") for status, body in results if status == 200)
    assert mock_upstream.state.total == statuses.count(200)
    rows = gateway.wait_for_logs(200, timeout=30)
    assert len(rows) == 200
    assert sum(r.end_reason == "done" for r in rows) == statuses.count(200)
    assert sum(r.end_reason == "rejected" for r in rows) == statuses.count(503)
    assert gateway.ctx.gate.in_use == 0
    assert gateway.ctx.gate.waiting == 0


async def test_50_concurrent_calls_with_every_channel_failing_stay_within_the_attempt_bound(
    gateway_factory: GatewayFactory, mock_upstream: MockServer
) -> None:
    gateway = gateway_factory(runtime={"max_attempts": 2})
    gateway.create_failing_channels(mock_upstream, status=500)
    key = gateway.create_key()
    async with httpx.AsyncClient(base_url=gateway.url, timeout=60) as client:
        responses = await asyncio.gather(
            *(_call(client, key, stream=i % 2 == 0) for i in range(50))
        )
    # 502 after the attempts; 503 once the breakers have opened (no channel left to try).
    codes = {(r.status_code, r.json()["error"]["code"]) for r in responses}
    assert codes <= {(502, "upstream_error"), (503, "channels_unavailable")}, codes
    assert 0 < mock_upstream.state.total <= 50 * 2
    rows = gateway.wait_for_logs(50)
    assert len(rows) == 50
    assert all(len(row.channels_tried) <= 2 for row in rows)
    assert sum(len(row.channels_tried) for row in rows) == mock_upstream.state.total
    assert gateway.ctx.gate.in_use == 0


@pytest.mark.parametrize("backend", ["memory", "redis"])
async def test_limit_and_usage_counters_are_exact_under_100_concurrent_calls(
    gateway_factory: GatewayFactory, mock_upstream: MockServer, request: pytest.FixtureRequest,
    backend: str,
) -> None:  # fmt: skip
    """100 calls at once against a limit of 40 a minute: exactly 40 pass (the limiter has no
    read-then-write race), and the call log, the user's totals and the daily statistics all count
    exactly 100 calls and the tokens of exactly 40 (on this run's database)."""
    redis = {"url": request.getfixturevalue("redis_url")} if backend == "redis" else {}
    gateway = gateway_factory(runtime={"default_user_rpm": 40}, redis=redis)
    gateway.create_channel(base_url=mock_upstream.base_url())
    key = gateway.create_key()
    limits = httpx.Limits(max_connections=120)
    async with httpx.AsyncClient(base_url=gateway.url, timeout=60, limits=limits) as client:
        responses = await asyncio.gather(*(_call(client, key, stream=False) for _ in range(100)))
    ok = [r for r in responses if r.status_code == 200]
    assert len(ok) == 40
    assert sorted({r.status_code for r in responses}) == [200, 429]
    assert mock_upstream.state.total == 40
    tokens = sum(r.json()["usage"]["total_tokens"] for r in ok)
    rows = gateway.wait_for_logs(100)
    assert len(rows) == 100
    assert sum(r.total_tokens or 0 for r in rows) == tokens
    totals = gateway.http.get("/api/usage/totals", headers=gateway.admin).json()
    assert (totals["requests"], totals["total_tokens"]) == (100, tokens)
    today = gateway.http.get("/api/admin/stats/overview", headers=gateway.admin).json()
    assert today["periods"]["today"]["calls"] == 100
    assert today["periods"]["today"]["total_tokens"] == tokens
