from __future__ import annotations

import re
from collections.abc import AsyncIterator

from tests.conftest import AccountFactory, Harness, HarnessFactory


async def test_every_response_carries_a_request_id(harness: Harness) -> None:
    generated = await harness.client.get("/healthz")
    second = await harness.client.get("/healthz")
    first_id = generated.headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]+-[0-9a-f]+", first_id)
    assert second.headers["x-request-id"] != first_id
    echoed = await harness.client.get("/healthz", headers={"X-Request-ID": "trace-abc.123"})
    assert echoed.headers["x-request-id"] == "trace-abc.123"
    hostile = await harness.client.get("/healthz", headers={"X-Request-ID": "bad id\r\nx: y"})
    assert hostile.headers["x-request-id"] != "bad id\r\nx: y"
    assert re.fullmatch(r"[0-9a-f]+-[0-9a-f]+", hostile.headers["x-request-id"])


async def test_declared_oversized_body_is_413(harness_factory: HarnessFactory) -> None:
    harness = await harness_factory(server={"max_body_bytes": 2048})
    response = await harness.client.post(
        "/api/auth/login", content=b"x" * 4096, headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"
    v1 = await harness.client.post("/v1/chat/completions", content=b"x" * 4096)
    assert v1.status_code == 413
    assert v1.json()["error"]["code"] == "payload_too_large"


async def test_streamed_oversized_body_is_413(harness_factory: HarnessFactory) -> None:
    harness = await harness_factory(server={"max_body_bytes": 2048})

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(8):
            yield b'{"padding": "' + b"y" * 500 + b'"}'

    response = await harness.client.post(
        "/api/auth/login", content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413


async def test_client_ip_comes_from_trusted_proxy_header_only(
    harness_factory: HarnessFactory,
) -> None:
    # The in-process client connects from 203.0.113.10 (see conftest).
    trusting = await harness_factory(server={"trusted_proxies": ["203.0.113.10"]})
    await trusting.client.post(
        "/api/auth/register", json={"username": "viaproxy", "password": "correct horse battery"}
    )
    login = await trusting.client.post(
        "/api/auth/login",
        json={"username": "viaproxy", "password": "correct horse battery"},
        headers={"X-Forwarded-For": "6.6.6.6, 198.51.100.23"},
    )
    token = login.json()["access_token"]
    sessions = await trusting.client.get(
        "/api/auth/sessions", headers={"Authorization": f"Bearer {token}"}
    )
    assert sessions.json()[0]["client_ip"] == "198.51.100.23"


async def test_untrusted_peer_cannot_spoof_its_address(
    harness: Harness, make_account: AccountFactory
) -> None:
    account = await make_account()
    login = await harness.client.post(
        "/api/auth/login",
        json={"username": account.username, "password": account.password},
        headers={"X-Forwarded-For": "198.51.100.23"},
    )
    sessions = await harness.client.get(
        "/api/auth/sessions", headers={"Authorization": f"Bearer {login.json()['access_token']}"}
    )
    assert {s["client_ip"] for s in sessions.json()} == {"203.0.113.10"}
