"""What happens to API keys when an account's password changes or its sessions are ended.

Keys are credentials of their own (a script's key should not stop because someone changed a
password), so by default they keep working; every such action can revoke them as well, and then
they stop at once — also past the `/v1` key cache.
"""

from __future__ import annotations

import pytest

from tests.auth.conftest import PASSWORD, mail_app, sign_up
from tests.conftest import Account, Harness, HarnessFactory
from tests.mail_server import SmtpServer, token_in

NEW_PASSWORD = "a brand new passphrase"


async def _key(harness: Harness, account: Account) -> str:
    created = await harness.client.post("/api/keys", json={"name": "k"}, headers=account.headers)
    assert created.status_code == 201, created.text
    key = str(created.json()["key"])
    assert await _works(harness, key)  # and it is now in the key cache
    return key


async def _works(harness: Harness, key: str) -> bool:
    response = await harness.client.get("/v1/models", headers={"Authorization": f"Bearer {key}"})
    assert response.status_code in (200, 401), response.text
    return response.status_code == 200


@pytest.mark.parametrize("revoke", [False, True])
async def test_a_password_reset_by_mail(
    harness_factory: HarnessFactory, smtp_server: SmtpServer, revoke: bool
) -> None:
    mail_harness = await mail_app(harness_factory, smtp_server)
    account = await sign_up(mail_harness, "bob", "bob@example.com")
    key = await _key(mail_harness, account)
    await mail_harness.client.post("/api/auth/password/reset", json={"email": "bob@example.com"})
    await mail_harness.app.state.ctx.jobs.drain()
    token = token_in((await smtp_server.await_for(1))[-1])
    done = await mail_harness.client.post(
        "/api/auth/password/reset/confirm",
        json={"token": token, "new_password": NEW_PASSWORD, "revoke_api_keys": revoke},
    )
    assert done.status_code == 204, done.text
    assert await _works(mail_harness, key) is not revoke


@pytest.mark.parametrize("revoke", [False, True])
async def test_a_password_change(harness: Harness, revoke: bool) -> None:
    account = await sign_up(harness, "carol")
    key = await _key(harness, account)
    changed = await harness.client.post(
        "/api/auth/me/password",
        json={
            "current_password": PASSWORD,
            "new_password": NEW_PASSWORD,
            "revoke_api_keys": revoke,
        },
        headers=account.headers,
    )
    assert changed.status_code == 204, changed.text
    assert await _works(harness, key) is not revoke


@pytest.mark.parametrize("revoke", [False, True])
async def test_an_admin_password_reset(harness: Harness, revoke: bool) -> None:
    account = await sign_up(harness, "dave")
    key = await _key(harness, account)
    reset = await harness.client.post(
        f"/api/admin/users/{account.id}/password",
        json={"revoke_api_keys": revoke},
        headers=await harness.admin_headers(),
    )
    assert reset.status_code == 200, reset.text
    assert reset.json()["api_keys_revoked"] == (1 if revoke else 0)
    assert await _works(harness, key) is not revoke


@pytest.mark.parametrize("revoke", [False, True])
async def test_an_admin_signs_a_user_out_everywhere(harness: Harness, revoke: bool) -> None:
    account = await sign_up(harness, "erin")
    key = await _key(harness, account)
    second = await _key(harness, account)
    ended = await harness.client.post(
        f"/api/admin/users/{account.id}/sign-out",
        json={"revoke_api_keys": revoke},
        headers=await harness.admin_headers(),
    )
    assert ended.status_code == 200, ended.text
    assert ended.json() == {"api_keys_revoked": 2 if revoke else 0}
    me = await harness.client.get("/api/auth/me", headers=account.headers)
    assert me.status_code == 401, "every session ended"
    for each in (key, second):
        assert await _works(harness, each) is not revoke
    # Signed in again, the user sees which keys were revoked (they stay listed).
    tokens = await harness.login("erin", PASSWORD)
    listed = await harness.client.get(
        "/api/keys",
        params={"include_revoked": "true"},
        headers={"Authorization": f"Bearer {tokens['access_token']}"},
    )
    assert len(listed.json()["items"]) == 2


async def test_signing_out_everywhere_is_for_admins(harness: Harness) -> None:
    user = await sign_up(harness, "frank")
    other = await sign_up(harness, "grace")
    response = await harness.client.post(
        f"/api/admin/users/{other.id}/sign-out", json={}, headers=user.headers
    )
    assert response.status_code == 403
