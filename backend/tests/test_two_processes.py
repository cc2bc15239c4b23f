"""Two app processes sharing one database and one Redis behave as one.

Limits hold exactly across both; a blacklist entry, a settings change, mail settings, a revoked key
and a disabled channel made through one process apply on the other within a second (Redis pub/sub).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from app.devtools.mock_upstream import MockServer
from tests.conftest import ADMIN_PASSWORD, ADMIN_USERNAME

pytestmark = pytest.mark.slow
PROPAGATION_SECONDS = 1.0
MESSAGES = [{"role": "user", "content": "hi"}]


def until(condition: Callable[[], bool], seconds: float = PROPAGATION_SECONDS) -> bool:
    """Whether `condition` became true within `seconds` (polled)."""
    deadline = time.monotonic() + seconds
    while True:
        if condition():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)


def test_two_processes_behave_as_one(
    two_processes: tuple[httpx.Client, httpx.Client], mock_upstream: MockServer
) -> None:
    a, b = two_processes
    login = a.post("/api/auth/login", json={"username": ADMIN_USERNAME, "password": ADMIN_PASSWORD})
    admin = {"Authorization": f"Bearer {login.json()['access_token']}"}
    channel = a.post(
        "/api/admin/channels",
        json={
            "name": "mock",
            "base_url": mock_upstream.base_url(),
            "api_key": "sk-mock",
            "models": ["mock-gpt"],
        },
        headers=admin,
    ).json()
    key = a.post("/api/keys", json={"name": "shared"}, headers=admin).json()["key"]
    bearer = {"Authorization": f"Bearer {key}"}

    # A user limit of 10/min admits exactly 10 across both processes.
    def call(client: httpx.Client) -> int:
        response = client.post(
            "/v1/chat/completions", json={"model": "mock-gpt", "messages": MESSAGES}, headers=bearer
        )
        return response.status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(call, [a, b] * 12))
    assert statuses.count(200) == 10
    assert statuses.count(429) == 14
    assert mock_upstream.state.total == 10

    # A key's budget for 10 calls admits exactly 10 of 40 concurrent ones across both processes
    # (the reservations are in Redis). A user without rate limits, so that the budget decides.
    made = a.post(
        "/api/admin/users",
        json={"username": "spender", "password": "spender-password-1"},
        headers=admin,
    ).json()
    a.patch(
        f"/api/admin/users/{made['id']}",
        json={"rpm_limit": 0, "concurrent_streams_limit": 0},
        headers=admin,
    )
    price = {"model": "mock-gpt", "input": "0", "output": "1000"}
    assert a.post("/api/admin/prices", json=price, headers=admin).status_code == 201
    spender = a.post(
        "/api/auth/login", json={"username": "spender", "password": "spender-password-1"}
    ).json()["access_token"]
    budget_key = a.post(
        "/api/keys",
        json={"name": "capped", "budget": "0.08", "budget_period": "day"},
        headers={"Authorization": f"Bearer {spender}"},
    ).json()["key"]
    capped = {"Authorization": f"Bearer {budget_key}"}
    # The price reaches the other process through Redis too.
    assert until(lambda: b.get("/v1/models", headers=capped).status_code == 200)

    def spend(client: httpx.Client) -> int:
        body = {"model": "mock-gpt", "max_tokens": 8, "messages": MESSAGES}
        return client.post("/v1/chat/completions", json=body, headers=capped).status_code

    time.sleep(PROPAGATION_SECONDS)  # the price is loaded on both
    with ThreadPoolExecutor(max_workers=16) as pool:
        spent = list(pool.map(spend, [a, b] * 20))
    assert spent.count(200) == 10, spent
    assert spent.count(429) == 30

    # A blacklist entry added through one process blocks on the other.
    attacker = {"X-Forwarded-For": "198.51.100.9"}
    assert b.get("/healthz", headers=attacker).status_code == 200
    rule = a.post("/api/admin/ip-rules", json={"cidr": "198.51.100.9"}, headers=admin)
    assert rule.status_code == 201
    assert until(lambda: b.get("/healthz", headers=attacker).status_code == 403)

    # A settings change made on one is seen by the other.
    changed = a.put("/api/admin/settings", json={"site_name": "共享网关"}, headers=admin)
    assert changed.status_code == 200
    assert until(lambda: b.get("/api/settings/public").json()["site_name"] == "共享网关")

    # Mail settings saved on one are used by the other (it holds them in memory).
    mail = {
        "host": "smtp.example.test",
        "port": 2525,
        "security": "none",
        "from_address": "a@example.com",
    }
    assert a.put("/api/admin/mail", json=mail, headers=admin).status_code == 200
    assert until(
        lambda: b.get("/api/admin/mail", headers=admin).json()["host"] == "smtp.example.test"
    )

    # A channel disabled on one stops being used by the other (its channel list was cached).
    assert b.get("/v1/models", headers=bearer).json()["data"]
    disabled = a.post(f"/api/admin/channels/{channel['id']}/disable", headers=admin)
    assert disabled.status_code == 200, disabled.text
    assert until(lambda: b.get("/v1/models", headers=bearer).json()["data"] == [])

    # A key revoked on one is refused by the other at once (its key lookup was cached).
    key_id = a.get("/api/keys", headers=admin).json()["items"][0]["id"]
    assert a.delete(f"/api/keys/{key_id}", headers=admin).status_code == 204
    assert until(lambda: b.get("/v1/models", headers=bearer).status_code == 401)
