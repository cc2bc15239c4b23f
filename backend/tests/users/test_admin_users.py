from __future__ import annotations

import pytest
from jose import jwt

from app.core.errors import UnauthorizedError
from app.keys import service as key_service
from tests.conftest import ADMIN_USERNAME, AccountFactory, Harness


async def test_users_cannot_reach_admin_routes(
    harness: Harness, make_account: AccountFactory
) -> None:
    account = await make_account()
    for method, path in (
        ("GET", "/api/admin/users"),
        ("POST", "/api/admin/users"),
        ("GET", f"/api/admin/users/{account.id}"),
        ("PATCH", f"/api/admin/users/{account.id}"),
        ("DELETE", f"/api/admin/users/{account.id}"),
        ("POST", f"/api/admin/users/{account.id}/password"),
        ("GET", "/api/admin/keys"),
        ("DELETE", "/api/admin/keys/1"),
    ):
        response = await harness.client.request(method, path, headers=account.headers, json={})
        assert response.status_code == 403, (method, path)
        assert response.json()["code"] == "admin_required"
        anonymous = await harness.client.request(method, path, json={})
        assert anonymous.status_code == 401, (method, path)


async def test_list_search_filter_and_paginate(
    harness: Harness, make_account: AccountFactory
) -> None:
    for n in range(5):
        await make_account(username=f"team_{n}", email=f"member{n}@corp.example")
    await make_account(username="outsider")
    admin = await harness.admin_headers()

    everyone = await harness.client.get("/api/admin/users", headers=admin)
    assert everyone.json()["total"] == 7  # five, the outsider, and the admin

    page = await harness.client.get(
        "/api/admin/users", params={"q": "team", "page": 2, "page_size": 2}, headers=admin
    )
    body = page.json()
    assert body["total"] == 5
    assert body["page"] == 2
    assert len(body["items"]) == 2
    by_email = await harness.client.get("/api/admin/users", params={"q": "MEMBER3@"}, headers=admin)
    assert [u["username"] for u in by_email.json()["items"]] == ["team_3"]
    admins = await harness.client.get("/api/admin/users", params={"role": "admin"}, headers=admin)
    assert [u["username"] for u in admins.json()["items"]] == [ADMIN_USERNAME]
    # LIKE wildcards are taken literally.
    wildcard = await harness.client.get("/api/admin/users", params={"q": "%"}, headers=admin)
    assert wildcard.json()["total"] == 0
    bad = await harness.client.get("/api/admin/users", params={"page_size": 1000}, headers=admin)
    assert bad.status_code == 422


async def test_admin_creates_user_who_can_sign_in(harness: Harness) -> None:
    admin = await harness.admin_headers()
    response = await harness.client.post(
        "/api/admin/users",
        json={"username": "newhire", "password": "first day pass", "role": "admin"},
        headers=admin,
    )
    assert response.status_code == 201
    assert response.json()["role"] == "admin"
    tokens = await harness.login("newhire", "first day pass")
    assert tokens["user"]["role"] == "admin"
    dup = await harness.client.post(
        "/api/admin/users", json={"username": "NewHire", "password": "whatever123"}, headers=admin
    )
    assert dup.status_code == 409


async def test_edit_role_and_profile(harness: Harness, make_account: AccountFactory) -> None:
    account = await make_account()
    admin = await harness.admin_headers()
    response = await harness.client.patch(
        f"/api/admin/users/{account.id}",
        json={"role": "admin", "display_name": "Ops", "email": "ops@example.com"},
        headers=admin,
    )
    assert response.status_code == 200
    body = response.json()
    assert (body["role"], body["display_name"], body["email"]) == (
        "admin",
        "Ops",
        "ops@example.com",
    )
    # The promoted user can now use admin routes with their existing token.
    listed = await harness.client.get("/api/admin/users", headers=account.headers)
    assert listed.status_code == 200


async def test_disable_revokes_sessions_and_blocks_keys_until_enabled(
    harness: Harness, make_account: AccountFactory
) -> None:
    account = await make_account()
    key = (
        await harness.client.post("/api/keys", json={"name": "ci"}, headers=account.headers)
    ).json()
    admin = await harness.admin_headers()
    ctx = harness.app.state.ctx

    async def key_works() -> bool:
        async with ctx.sessionmaker() as db:
            try:
                await key_service.authenticate(db, key["key"])
            except UnauthorizedError:
                return False
            return True

    assert await key_works()
    await harness.client.patch(
        f"/api/admin/users/{account.id}", json={"status": "disabled"}, headers=admin
    )
    assert not await key_works()
    assert (await harness.client.get("/api/auth/me", headers=account.headers)).status_code == 401

    await harness.client.patch(
        f"/api/admin/users/{account.id}", json={"status": "active"}, headers=admin
    )
    assert await key_works()
    # Sessions stay revoked: they have to sign in again.
    assert (await harness.client.get("/api/auth/me", headers=account.headers)).status_code == 401
    await harness.login(account.username, account.password)


async def test_reset_password_generated_or_given(
    harness: Harness, make_account: AccountFactory
) -> None:
    account = await make_account()
    admin = await harness.admin_headers()
    generated = await harness.client.post(
        f"/api/admin/users/{account.id}/password", json={}, headers=admin
    )
    assert generated.status_code == 200
    new_password = generated.json()["password"]
    assert len(new_password) >= 16
    assert (await harness.client.get("/api/auth/me", headers=account.headers)).status_code == 401
    await harness.login(account.username, new_password)

    given = await harness.client.post(
        f"/api/admin/users/{account.id}/password",
        json={"password": "chosen by admin"},
        headers=admin,
    )
    assert given.json() == {"password": None, "api_keys_revoked": 0}
    await harness.login(account.username, "chosen by admin")
    short = await harness.client.post(
        f"/api/admin/users/{account.id}/password", json={"password": "x"}, headers=admin
    )
    assert short.status_code == 422


async def test_delete_user_removes_their_keys(
    harness: Harness, make_account: AccountFactory
) -> None:
    account = await make_account()
    await harness.client.post("/api/keys", json={"name": "k"}, headers=account.headers)
    admin = await harness.admin_headers()
    assert (
        await harness.client.get("/api/admin/keys", params={"user_id": account.id}, headers=admin)
    ).json()["total"] == 1
    assert (
        await harness.client.delete(f"/api/admin/users/{account.id}", headers=admin)
    ).status_code == 204
    assert (
        await harness.client.get(f"/api/admin/users/{account.id}", headers=admin)
    ).status_code == 404
    assert (
        await harness.client.get("/api/admin/keys", params={"user_id": account.id}, headers=admin)
    ).json()["total"] == 0


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [
        ("PATCH", "", {"status": "disabled"}),
        ("PATCH", "", {"role": "user"}),
        ("DELETE", "", None),
    ],
)
async def test_admin_cannot_lock_themselves_out(
    harness: Harness, method: str, suffix: str, body: dict[str, str] | None
) -> None:
    admin = await harness.admin_headers()
    me = (await harness.client.get("/api/auth/me", headers=admin)).json()
    response = await harness.client.request(
        method, f"/api/admin/users/{me['id']}{suffix}", json=body, headers=admin
    )
    assert response.status_code == 409
    assert response.json()["code"] in ("self_change", "last_admin")
    still = await harness.client.get("/api/auth/me", headers=admin)
    assert still.json()["role"] == "admin"
    assert still.json()["status"] == "active"


async def test_one_admin_may_disable_another(
    harness: Harness, make_account: AccountFactory
) -> None:
    second = await make_account()
    admin = await harness.admin_headers()
    promoted = await harness.client.patch(
        f"/api/admin/users/{second.id}", json={"role": "admin"}, headers=admin
    )
    assert promoted.status_code == 200
    me = (await harness.client.get("/api/auth/me", headers=admin)).json()
    disabled = await harness.client.patch(
        f"/api/admin/users/{me['id']}", json={"status": "disabled"}, headers=second.headers
    )
    assert disabled.status_code == 200
    assert (await harness.client.get("/api/auth/me", headers=admin)).status_code == 401
    # The remaining admin is now the last one and cannot demote themselves.
    demote_self = await harness.client.patch(
        f"/api/admin/users/{second.id}", json={"role": "user"}, headers=second.headers
    )
    assert demote_self.status_code == 409


async def test_missing_user_is_404(harness: Harness) -> None:
    admin = await harness.admin_headers()
    for method in ("GET", "PATCH", "DELETE"):
        response = await harness.client.request(
            method, "/api/admin/users/999999", json={}, headers=admin
        )
        assert response.status_code == 404


async def test_admin_token_claims_carry_no_role(harness: Harness) -> None:
    """Roles are read from the database per request, so a demotion takes effect at once."""
    admin = await harness.admin_headers()
    claims = jwt.get_unverified_claims(admin["Authorization"].split()[1])
    assert "role" not in claims
