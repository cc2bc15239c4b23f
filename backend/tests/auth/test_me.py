from __future__ import annotations

import pytest

from tests.conftest import AccountFactory, Harness


async def test_update_profile(harness: Harness, make_account: AccountFactory) -> None:
    account = await make_account()
    response = await harness.client.patch(
        "/api/auth/me",
        json={"display_name": "小明", "email": "Ming@Example.com"},
        headers=account.headers,
    )
    assert response.status_code == 200
    assert response.json()["display_name"] == "小明"
    assert response.json()["email"] == "ming@example.com"
    cleared = await harness.client.patch(
        "/api/auth/me", json={"display_name": None}, headers=account.headers
    )
    assert cleared.json()["display_name"] is None
    assert cleared.json()["email"] == "ming@example.com"


async def test_profile_cannot_take_someone_elses_email_or_change_role(
    harness: Harness, make_account: AccountFactory
) -> None:
    await make_account(email="taken@example.com")
    account = await make_account()
    clash = await harness.client.patch(
        "/api/auth/me", json={"email": "TAKEN@example.com"}, headers=account.headers
    )
    assert clash.status_code == 409
    escalate = await harness.client.patch(
        "/api/auth/me", json={"role": "admin"}, headers=account.headers
    )
    assert escalate.status_code == 422
    me = await harness.client.get("/api/auth/me", headers=account.headers)
    assert me.json()["role"] == "user"
    assert me.json()["email"] is None


async def test_change_password_revokes_other_sessions_only(
    harness: Harness, make_account: AccountFactory
) -> None:
    account = await make_account(password="old password 1")
    other = await harness.login(account.username, "old password 1")
    response = await harness.client.post(
        "/api/auth/me/password",
        json={"current_password": "old password 1", "new_password": "new password 2"},
        headers=account.headers,
    )
    assert response.status_code == 204
    # This session continues; the other device is signed out.
    assert (await harness.client.get("/api/auth/me", headers=account.headers)).status_code == 200
    assert (
        await harness.client.get(
            "/api/auth/me", headers={"Authorization": f"Bearer {other['access_token']}"}
        )
    ).status_code == 401
    old = await harness.client.post(
        "/api/auth/login", json={"username": account.username, "password": "old password 1"}
    )
    assert old.status_code == 401
    await harness.login(account.username, "new password 2")


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        (
            {"current_password": "wrong one!", "new_password": "new password 2"},
            422,
            "current_password",
        ),
        ({"current_password": "old password 1", "new_password": "short"}, 422, "new_password"),
        (
            {"current_password": "old password 1", "new_password": "old password 1"},
            422,
            "new_password",
        ),
    ],
)
async def test_change_password_errors_change_nothing(
    harness: Harness, make_account: AccountFactory, body: dict[str, str], status: int, field: str
) -> None:
    account = await make_account(password="old password 1")
    response = await harness.client.post(
        "/api/auth/me/password", json=body, headers=account.headers
    )
    assert response.status_code == status
    assert response.json()["detail"][0]["loc"][-1] == field
    await harness.login(account.username, "old password 1")


async def test_me_requires_authentication(harness: Harness) -> None:
    assert (await harness.client.get("/api/auth/me")).status_code == 401
    assert (await harness.client.patch("/api/auth/me", json={})).status_code == 401
