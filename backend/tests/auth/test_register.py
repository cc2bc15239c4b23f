from __future__ import annotations

import httpx
import pytest

from tests.conftest import Harness, HarnessFactory


async def test_register_returns_the_user_without_secrets(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/auth/register",
        json={
            "username": "alice",
            "password": "correct horse battery",
            "email": "Alice@Example.COM",
        },
    )
    assert response.status_code == 201
    body = response.json()
    assert body["username"] == "alice"
    assert body["email"] == "alice@example.com"
    assert body["role"] == "user"
    assert body["status"] == "active"
    assert "password" not in response.text
    assert "hash" not in response.text


@pytest.mark.parametrize("variant", ["alice", "ALICE", "Alice", "ａｌｉｃｅ"])
async def test_duplicate_username_in_any_case_or_width_is_409(
    client: httpx.AsyncClient, variant: str
) -> None:
    first = await client.post(
        "/api/auth/register", json={"username": "alice", "password": "correct horse battery"}
    )
    assert first.status_code == 201
    second = await client.post(
        "/api/auth/register", json={"username": variant, "password": "another password"}
    )
    assert second.status_code == 409
    assert second.json()["code"] == "username_taken"


async def test_duplicate_email_is_409(client: httpx.AsyncClient) -> None:
    ok = await client.post(
        "/api/auth/register",
        json={"username": "bob", "password": "correct horse battery", "email": "bob@example.com"},
    )
    assert ok.status_code == 201
    dup = await client.post(
        "/api/auth/register",
        json={"username": "bobby", "password": "correct horse battery", "email": "BOB@example.com"},
    )
    assert dup.status_code == 409
    assert dup.json()["code"] == "email_taken"


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("", "must not be empty"),
        ("        ", "must not be empty"),
        ("Qz7!kw", "at least 8 characters"),
        ("x" * 257, "at most 256 characters"),
    ],
)
async def test_bad_passwords_are_422_with_a_message_and_create_nothing(
    harness: Harness, password: str, message: str
) -> None:
    response = await harness.client.post(
        "/api/auth/register", json={"username": "carol", "password": password}
    )
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert detail[0]["loc"] == ["body", "password"]
    assert message in detail[0]["msg"]
    # The submitted value is never echoed back.
    if password.strip():
        assert password not in response.text
    admin = await harness.admin_headers()
    users = await harness.client.get("/api/admin/users", params={"q": "carol"}, headers=admin)
    assert users.json()["total"] == 0


@pytest.mark.parametrize(
    "username", ["a", "x" * 33, "has space", "semi;colon", "at@sign", "12345", ""]
)
async def test_bad_usernames_are_422(client: httpx.AsyncClient, username: str) -> None:
    response = await client.post(
        "/api/auth/register", json={"username": username, "password": "correct horse battery"}
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "username"]


async def test_chinese_usernames_are_accepted(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/auth/register", json={"username": "张三", "password": "correct horse battery"}
    )
    assert response.status_code == 201
    assert response.json()["username"] == "张三"


@pytest.mark.parametrize(
    "body",
    [
        {"username": "dave"},
        {"password": "correct horse battery"},
        {"username": "dave", "password": "correct horse battery", "role": "admin"},
        {"username": "dave", "password": "correct horse battery", "email": "not-an-email"},
        {"username": ["dave"], "password": "correct horse battery"},
        {"username": "dave", "password": 12345678},
    ],
)
async def test_malformed_registrations_are_422(
    client: httpx.AsyncClient, body: dict[str, object]
) -> None:
    response = await client.post("/api/auth/register", json=body)
    assert response.status_code == 422


async def test_registration_cannot_grant_admin(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/auth/register",
        json={"username": "eve", "password": "correct horse battery", "role": "admin"},
    )
    assert response.status_code == 422
    login = await client.post(
        "/api/auth/login", json={"username": "eve", "password": "correct horse battery"}
    )
    assert login.status_code == 401


async def test_registrations_per_ip_are_limited(harness_factory: HarnessFactory) -> None:
    harness = await harness_factory(runtime={"register_max_per_ip_per_hour": 3})
    statuses = []
    for n in range(4):
        response = await harness.client.post(
            "/api/auth/register", json={"username": f"bulk{n}", "password": "correct horse battery"}
        )
        statuses.append(response.status_code)
    assert statuses == [201, 201, 201, 429]
    assert int(response.headers["Retry-After"]) > 0
