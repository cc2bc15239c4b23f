"""The global concurrency gate: never more upstream calls than its size; waiters time out with 503."""

from __future__ import annotations

import asyncio

import httpx

from app.devtools.mock_upstream import MockServer
from tests.live import GatewayFactory

MESSAGES = [{"role": "user", "content": "hi"}]


async def test_the_upstream_never_sees_more_than_the_gate_size(
    gateway_factory: GatewayFactory, mock_upstream: MockServer
) -> None:
    gateway = gateway_factory(runtime={"llm_concurrency": 3, "queue_timeout_seconds": 30})
    mock_upstream.set_profile("slow", chunks=5, interval=0.05)
    gateway.create_channel(base_url=mock_upstream.base_url("slow"))
    key = gateway.create_key()
    async with httpx.AsyncClient(base_url=gateway.url, timeout=60) as client:

        async def one(stream: bool) -> int:
            response = await client.post(
                "/v1/chat/completions",
                json={"model": "mock-gpt", "messages": MESSAGES, "stream": stream},
                headers={"Authorization": f"Bearer {key}"},
            )
            return response.status_code

        statuses = await asyncio.gather(*(one(stream=i % 2 == 0) for i in range(12)))
    assert statuses == [200] * 12
    assert mock_upstream.state.total == 12
    assert mock_upstream.state.max_in_flight == 3
    assert gateway.ctx.gate.in_use == 0


async def test_waiters_get_503_with_retry_after_and_health_stays_fast(
    gateway_factory: GatewayFactory, mock_upstream: MockServer
) -> None:
    gateway = gateway_factory(runtime={"llm_concurrency": 2, "queue_timeout_seconds": 0.3})
    mock_upstream.set_profile("hold", chunks=3, interval=0.5)
    gateway.create_channel(base_url=mock_upstream.base_url("hold"))
    key = gateway.create_key()
    async with httpx.AsyncClient(base_url=gateway.url, timeout=60) as client:

        async def one() -> httpx.Response:
            return await client.post(
                "/v1/chat/completions",
                json={"model": "mock-gpt", "messages": MESSAGES, "stream": True},
                headers={"Authorization": f"Bearer {key}"},
            )

        calls = [asyncio.ensure_future(one()) for _ in range(6)]
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
