"""A model call's limits cost one round trip to Redis to start and one to end: the address's
window, the key's and user's rates and concurrency slots and the budget reservation in one script;
the slots' release and the cost's settlement in another. The address's window is the same one the
guard counts for other paths, and a model call refused before its admission still counts."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from app.devtools.mock_upstream import MockServer
from tests.live import GatewayFactory, LiveGateway

BODY = {"model": "mock-gpt", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}


def _post(gateway: LiveGateway, key: str, body: Any = BODY) -> httpx.Response:
    return httpx.post(
        f"{gateway.url}/v1/chat/completions",
        json=body,
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )


@pytest.mark.parametrize("backend", ["memory", "redis"])
def test_one_address_window_for_model_calls_refusals_and_other_paths(
    gateway_factory: GatewayFactory,
    mock_upstream: MockServer,
    request: pytest.FixtureRequest,
    backend: str,
) -> None:
    redis = {"url": request.getfixturevalue("redis_url")} if backend == "redis" else {}
    gateway = gateway_factory(runtime={"ip_rpm": 7}, redis=redis)
    gateway.create_channel(base_url=mock_upstream.base_url())  # (the admin's sign-in: 1 of 7)
    key = gateway.create_key()
    assert [_post(gateway, key).status_code for _ in range(3)] == [200, 200, 200]
    assert _post(gateway, "sk-not-a-real-key").status_code == 401  # counted when refused
    assert _post(gateway, key, body={"model": "mock-gpt"}).status_code == 400  # counted too
    login = httpx.post(
        f"{gateway.url}/api/auth/login", json={"username": "x", "password": "wrong-password"}
    )
    assert login.status_code == 401  # the guard's count: the same window
    refused = _post(gateway, key)
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "ip_rate_limited"
    assert mock_upstream.state.total == 3


def test_a_limited_call_takes_two_round_trips(
    gateway_factory: GatewayFactory, mock_upstream: MockServer, redis_url: str
) -> None:
    gateway = gateway_factory(
        runtime={"ip_rpm": 1000, "default_user_rpm": 1000, "default_user_concurrent_streams": 10},
        redis={"url": redis_url},
    )
    gateway.create_channel(base_url=mock_upstream.base_url())
    price = {"model": "mock-gpt", "input": "1", "output": "1"}
    assert (
        gateway.http.post("/api/admin/prices", json=price, headers=gateway.admin).status_code == 201
    )
    key = gateway.create_key(budget="10", rpm_limit=100, concurrent_streams_limit=5)
    redis = gateway.ctx.redis
    assert _post(gateway, key).status_code == 200  # the budget's first use: started from the db
    gateway.wait_for_logs(1)
    commands: list[str] = []
    original = redis.execute_command

    async def counting(*args: Any, **options: Any) -> Any:
        commands.append(str(args[0]))
        return await original(*args, **options)

    redis.execute_command = counting  # type: ignore[method-assign]
    try:
        assert _post(gateway, key).status_code == 200
        gateway.wait_for_logs(2)
        gateway.run(gateway.ctx.calls.settling.drain)
    finally:
        redis.execute_command = original  # type: ignore[method-assign]
    scripts = [c for c in commands if c.upper() in ("EVALSHA", "EVAL")]
    assert len(scripts) == 2, commands  # admission, then release and settlement together
    assert len(commands) == 2, commands
    slot_sets = gateway.run(lambda: redis.keys(f"{gateway.ctx.settings.redis.key_prefix}:slots:*"))
    for name in slot_sets:
        assert gateway.run(lambda name=name: redis.zcard(name)) == 0  # every lease given back
