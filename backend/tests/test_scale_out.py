"""Two app processes sharing one database and one Redis behave as one under mixed load.

/v1 calls (streamed and not) and web-chat replies spread over both; a user limit holds exactly
across both; a circuit breaker opened by failures one process saw routes the other around the
channel; every call is logged exactly once.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from app.devtools.mock_upstream import MockServer
from tests.conftest import ADMIN_PASSWORD, ADMIN_USERNAME

pytestmark = pytest.mark.slow
MESSAGES = [{"role": "user", "content": "hi"}]


def _until(condition: Any, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _user(
    client: httpx.Client, admin: dict[str, str], name: str, **limits: Any
) -> tuple[dict[str, str], int]:
    created = client.post(
        "/api/admin/users",
        json={
            "username": name,
            "password": "correct horse battery",
            "role": "user",
            "status": "active",
        },
        headers=admin,
    )
    assert created.status_code == 201, created.text
    if limits:
        client.patch(
            f"/api/admin/users/{created.json()['id']}", json=limits, headers=admin
        ).raise_for_status()
    login = client.post(
        "/api/auth/login", json={"username": name, "password": "correct horse battery"}
    )
    return {"Authorization": f"Bearer {login.json()['access_token']}"}, created.json()["id"]


def test_mixed_load_over_two_processes_behaves_as_one(
    two_processes: tuple[httpx.Client, httpx.Client], mock_upstream: MockServer
) -> None:
    a, b = two_processes
    login = a.post("/api/auth/login", json={"username": ADMIN_USERNAME, "password": ADMIN_PASSWORD})
    admin = {"Authorization": f"Bearer {login.json()['access_token']}"}
    mock_upstream.set_profile("down", status=503)
    mock_upstream.set_profile("up", chunks=4)
    a.put(
        "/api/admin/settings",
        json={
            "breaker_consecutive_failures": 2,
            "breaker_cooldown_seconds": 120,
            "chat_auto_title": False,
        },
        headers=admin,
    ).raise_for_status()
    broken = a.post(
        "/api/admin/channels",
        json={
            "name": "broken",
            "base_url": mock_upstream.base_url("down"),
            "api_key": "sk-up-broken",
            "models": ["mock-gpt"],
            "priority": 10,
        },
        headers=admin,
    ).json()
    a.post(
        "/api/admin/channels",
        json={
            "name": "healthy",
            "base_url": mock_upstream.base_url("up"),
            "api_key": "sk-up-healthy",
            "models": ["mock-gpt"],
        },
        headers=admin,
    ).raise_for_status()
    loader, _ = _user(a, admin, "loader", rpm_limit=0, concurrent_streams_limit=0)
    limited, limited_id = _user(a, admin, "limited", rpm_limit=7)
    key = a.post("/api/keys", json={"name": "load"}, headers=loader).json()["key"]
    bearer = {"Authorization": f"Bearer {key}"}
    assert _until(lambda: b.get("/v1/models", headers=bearer).json()["data"] != [])

    # The breaker: two failures seen by a open it there, and b follows without trying.
    for _ in range(2):
        assert (
            a.post(
                "/v1/chat/completions",
                json={"model": "mock-gpt", "messages": MESSAGES},
                headers=bearer,
            ).status_code
            == 200
        )
    broken_hits = sum(1 for r in mock_upstream.state.chat_requests() if r.profile == "down")
    assert broken_hits == 2
    assert _until(
        lambda: (
            b.get(f"/api/admin/channels/{broken['id']}", headers=admin).json()["breaker_open"]
            == ["mock-gpt"]
        )
    )
    for _ in range(3):
        assert (
            b.post(
                "/v1/chat/completions",
                json={"model": "mock-gpt", "messages": MESSAGES},
                headers=bearer,
            ).status_code
            == 200
        )
    assert (
        sum(1 for r in mock_upstream.state.chat_requests() if r.profile == "down") == broken_hits
    ), "b routed around"

    # Mixed load spread over both: /v1 streamed and not, and web-chat replies.
    def v1(index: int) -> int:
        client = (a, b)[index % 2]
        body = {"model": "mock-gpt", "messages": MESSAGES, "stream": index % 3 == 0}
        with client.stream("POST", "/v1/chat/completions", json=body, headers=bearer) as response:
            text = response.read().decode()
            if body["stream"]:
                assert text.rstrip().endswith("data: [DONE]")
            return response.status_code

    conversations = [
        (a, b)[i % 2].post("/api/conversations", json={}, headers=loader).json()["id"]
        for i in range(6)
    ]

    def chat(index: int) -> str:
        client = (b, a)[index % 2]  # the other process than the one that created it
        with client.stream(
            "POST",
            f"/api/conversations/{conversations[index]}/messages",
            json={"content": "go"},
            headers=loader,
        ) as response:
            events = [line for line in response.iter_lines() if line.startswith("event: ")]
        return events[-1]

    def limited_call(index: int) -> int:
        return (
            (a, b)[index % 2]
            .post(
                "/v1/chat/completions",
                json={"model": "mock-gpt", "messages": MESSAGES},
                headers=limited,
            )
            .status_code
        )

    with ThreadPoolExecutor(8) as pool:
        v1_results = list(pool.map(v1, range(40)))
        chat_results = list(pool.map(chat, range(6)))
        limited_results = list(pool.map(limited_call, range(16)))
    assert v1_results == [200] * 40
    assert chat_results == ["event: done"] * 6
    assert sorted(limited_results) == [200] * 7 + [429] * 9, "the user's limit holds across both"

    # Every call exactly once in the log: 2 + 3 + 40 + 6 + 16.
    expected = 2 + 3 + 40 + 6 + 16
    assert _until(
        lambda: a.get("/api/admin/logs/totals", headers=admin).json()["requests"] == expected, 10
    )
    ids: list[str] = []
    cursor = None
    while True:
        page = b.get(
            "/api/admin/logs",
            params={"limit": 200, **({"cursor": cursor} if cursor else {})},
            headers=admin,
        ).json()
        ids += [row["request_id"] for row in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(ids) == expected
    assert len(set(ids)) == expected, "no call logged twice"
    refused = b.get(
        "/api/admin/logs/totals",
        params={"user_id": limited_id, "end_reason": "rejected"},
        headers=admin,
    ).json()
    assert refused["requests"] == 9
