"""The Redis client waits for a free connection when every one is busy, instead of failing the
call (redis-py's default pool refuses the 101st concurrent command at once)."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from app.core.redis import create_redis
from app.devtools.mock_upstream import MockServer
from tests.live import GatewayFactory


async def test_a_burst_beyond_the_pool_waits_its_turn(redis_url: str) -> None:
    client = create_redis(redis_url, max_connections=2, pool_timeout=5)
    key = f"t{uuid.uuid4().hex}"
    try:
        # Ten commands that each hold a connection for 0.1 s, on a pool of two.
        results = await asyncio.gather(*(client.blpop([key], timeout=0.1) for _ in range(10)))
        assert results == [None] * 10
    finally:
        await client.aclose()


async def test_a_pool_busy_past_its_timeout_raises_a_connection_error(redis_url: str) -> None:
    client = create_redis(redis_url, max_connections=1, pool_timeout=0.05)
    key = f"t{uuid.uuid4().hex}"
    try:
        holder = asyncio.ensure_future(client.blpop([key], timeout=1))
        await asyncio.sleep(0.05)
        with pytest.raises(RedisConnectionError):
            await client.get(key)
        await holder
    finally:
        await client.aclose()


def test_an_unreachable_limit_store_is_a_503_not_a_500(
    gateway_factory: GatewayFactory, mock_upstream: MockServer, redis_url: str
) -> None:
    gateway = gateway_factory(redis={"url": redis_url}, runtime={"default_user_rpm": 100})
    gateway.create_channel(base_url=mock_upstream.base_url())
    key = gateway.create_key()

    async def unreachable(**_: object) -> None:
        raise RedisConnectionError("Connection refused")

    gateway.ctx.admission._script = unreachable
    response = httpx.post(
        f"{gateway.url}/v1/chat/completions",
        json={"model": "mock-gpt", "messages": [{"role": "user", "content": "hi"}]},
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "limits_unavailable"
    assert response.headers["retry-after"]
    assert mock_upstream.state.total == 0
    assert gateway.wait_for_logs(1)[0].end_reason == "rejected"
