"""Per-user, per-key and per-address limits on a running gateway, seen by an HTTP client."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from app.devtools.mock_upstream import MockServer
from tests.live import GatewayFactory, LiveGateway

MESSAGES = [{"role": "user", "content": "hi"}]


def chat(gateway: LiveGateway, key: str, **extra: Any) -> httpx.Response:
    return gateway.http.post(
        "/v1/chat/completions",
        json={"model": "mock-gpt", "messages": MESSAGES, **extra},
        headers={"Authorization": f"Bearer {key}"},
    )


def assert_limited(response: httpx.Response, code: str, limit: int) -> None:
    assert response.status_code == 429, response.text
    assert response.json()["error"]["code"] == code
    assert response.json()["error"]["type"] == "rate_limit_error"
    assert int(response.headers["retry-after"]) >= 1
    assert response.headers["x-ratelimit-limit"] == str(limit)
    assert response.headers["x-ratelimit-remaining"] == "0"
    assert 1 <= int(response.headers["x-ratelimit-reset"]) <= 60


def test_user_rpm_default_and_admin_override(
    gateway_factory: GatewayFactory, mock_upstream: MockServer
) -> None:
    gateway = gateway_factory(runtime={"default_user_rpm": 3})
    gateway.create_channel(base_url=mock_upstream.base_url())
    key = gateway.create_key()
    other_key = gateway.create_key()
    assert [chat(gateway, key).status_code for _ in range(3)] == [200] * 3
    # The limit is the user's: another key of the same user is stopped too.
    limited = chat(gateway, other_key)
    assert_limited(limited, "user_rate_limited", 3)
    assert mock_upstream.state.total == 3  # the refused call never reached the upstream
    me = gateway.http.get("/api/auth/me", headers=gateway.admin).json()
    override = gateway.http.patch(
        f"/api/admin/users/{me['id']}", json={"rpm_limit": 5}, headers=gateway.admin
    )
    assert override.status_code == 200
    assert override.json()["rpm_limit"] == 5
    assert [chat(gateway, key).status_code for _ in range(3)] == [200, 200, 429]
    rows = gateway.wait_for_logs(7)
    assert len(rows) == 7
    assert sorted(row.status_code for row in rows).count(429) == 2
    assert all(row.end_reason == "rejected" for row in rows if row.status_code == 429)


def test_key_limits_apply_to_that_key_only(
    gateway_factory: GatewayFactory, mock_upstream: MockServer
) -> None:
    gateway = gateway_factory()
    gateway.create_channel(base_url=mock_upstream.base_url())
    limited_key = gateway.create_key(rpm_limit=2)
    free_key = gateway.create_key()
    assert [chat(gateway, limited_key).status_code for _ in range(2)] == [200, 200]
    assert_limited(chat(gateway, limited_key), "key_rate_limited", 2)
    assert chat(gateway, free_key).status_code == 200
    listed = gateway.http.get("/api/keys", headers=gateway.admin).json()["items"]
    assert {k["rpm_limit"] for k in listed} == {2, None}


def test_bad_limit_values_are_refused(gateway_factory: GatewayFactory) -> None:
    gateway = gateway_factory()
    response = gateway.http.post(
        "/api/keys", json={"name": "k", "rpm_limit": 0}, headers=gateway.admin
    )
    assert response.status_code == 422
    me = gateway.http.get("/api/auth/me", headers=gateway.admin).json()
    response = gateway.http.patch(
        f"/api/admin/users/{me['id']}", json={"rpm_limit": -1}, headers=gateway.admin
    )
    assert response.status_code == 422


async def test_concurrent_streams_per_user_and_per_key(
    gateway_factory: GatewayFactory, mock_upstream: MockServer
) -> None:
    gateway = gateway_factory(runtime={"default_user_concurrent_streams": 2})
    mock_upstream.set_profile("slow", chunks=4, interval=0.25, latency=1.0)
    gateway.create_channel(base_url=mock_upstream.base_url("slow"))
    key = gateway.create_key()
    capped_key = gateway.create_key(concurrent_streams_limit=1)
    async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as client:

        async def call(api_key: str, stream: bool = True) -> httpx.Response:
            return await client.post(
                "/v1/chat/completions",
                json={"model": "mock-gpt", "messages": MESSAGES, "stream": stream},
                headers={"Authorization": f"Bearer {api_key}"},
            )

        first = asyncio.ensure_future(call(capped_key))
        await asyncio.sleep(0.3)
        # The capped key has its one slot in use; the user has one left.
        assert_limited(await call(capped_key), "key_concurrency", 1)
        second = asyncio.ensure_future(call(key, stream=False))
        await asyncio.sleep(0.3)
        assert_limited(await call(key), "user_concurrency", 2)
        assert [r.status_code for r in await asyncio.gather(first, second)] == [200, 200]
        # Both finished: their slots are free again.
        assert (await call(capped_key)).status_code == 200
    admin_id = gateway.http.get("/api/auth/me", headers=gateway.admin).json()["id"]
    assert gateway.ctx.slots.in_use(f"user:{admin_id}") == 0
    assert mock_upstream.state.max_in_flight == 2


def test_per_address_rpm_on_v1_auth_and_not_elsewhere(
    gateway_factory: GatewayFactory, mock_upstream: MockServer
) -> None:
    gateway = gateway_factory()
    gateway.create_channel(base_url=mock_upstream.base_url())
    key = gateway.create_key()
    admin = gateway.admin
    gateway.http.put("/api/admin/settings", json={"ip_rpm": 4}, headers=admin)
    statuses = [
        gateway.http.get("/v1/models", headers={"Authorization": f"Bearer {key}"}).status_code
        for _ in range(4)
    ]
    assert statuses == [200] * 4
    v1 = gateway.http.get("/v1/models", headers={"Authorization": f"Bearer {key}"})
    assert_limited(v1, "ip_rate_limited", 4)
    login = gateway.http.post("/api/auth/login", json={"username": "x", "password": "y"})
    assert login.status_code == 429
    assert login.json()["code"] == "ip_rate_limited"
    assert login.headers["x-ratelimit-limit"] == "4"
    # Health checks and the admin API are not counted against the address.
    assert gateway.http.get("/healthz").status_code == 200
    assert gateway.http.get("/api/admin/settings", headers=admin).status_code == 200
    # Turning it off applies at once.
    assert gateway.http.put("/api/admin/settings", json={"ip_rpm": 0}, headers=admin).is_success
    assert gateway.http.get("/v1/models", headers={"Authorization": f"Bearer {key}"}).is_success
