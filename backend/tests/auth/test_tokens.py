from __future__ import annotations

import asyncio
import base64
import json
import time
from datetime import timedelta

import pytest
from jose import jwt
from sqlalchemy import update

from app.models import AuthSession
from app.models.base import utcnow
from tests.conftest import SIGNING_KEY, AccountFactory, Harness, HarnessFactory, register

UNIFORM_401 = {"detail": "Invalid or expired token", "code": "invalid_token"}


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


async def _assert_uniform_401(harness: Harness, authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization is not None else {}
    response = await harness.client.get("/api/auth/me", headers=headers)
    assert response.status_code == 401
    assert response.json() == UNIFORM_401
    assert response.headers["www-authenticate"] == "Bearer"


async def test_every_bad_token_gets_the_same_401(
    harness: Harness, make_account: AccountFactory
) -> None:
    account = await make_account()
    claims = jwt.get_unverified_claims(account.access_token)
    header, body, signature = account.access_token.split(".")
    now = int(time.time())

    expired = jwt.encode({**claims, "iat": now - 7200, "exp": now - 3600}, SIGNING_KEY, "HS256")
    tampered = f"{header}.{_b64({**claims, 'sub': str(int(claims['sub']) + 1)})}.{signature}"
    alg_none = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{body}."
    other_alg = jwt.encode(claims, SIGNING_KEY, algorithm="HS512")
    other_key = jwt.encode(claims, "a-different-signing-key-0123456789abcdef", algorithm="HS256")

    for authorization in (
        f"Bearer {expired}",
        f"Bearer {tampered}",
        f"Bearer {alg_none}",
        f"Bearer {other_alg}",
        f"Bearer {other_key}",
        f"Bearer {account.refresh_token}",  # a refresh token is not an access token
        "Bearer ",
        "Bearer",
        "",
        None,
        f"Basic {account.access_token}",
        "Bearer not.a.jwt",
    ):
        await _assert_uniform_401(harness, authorization)


async def test_refresh_rotates_and_old_refresh_token_reuse_revokes_the_session(
    harness_factory: HarnessFactory,
) -> None:
    # No grace window: the old token's return is reuse at once.
    harness = await harness_factory(auth={"refresh_grace_seconds": 0})
    account = await register(harness, "rotating")
    first = await harness.client.post(
        "/api/auth/refresh", json={"refresh_token": account.refresh_token}
    )
    assert first.status_code == 200
    rotated = first.json()
    assert rotated["refresh_token"] != account.refresh_token
    assert (
        await harness.client.get(
            "/api/auth/me", headers={"Authorization": f"Bearer {rotated['access_token']}"}
        )
    ).status_code == 200

    # The old refresh token comes back (it was stolen): refused, and the whole session ends.
    replay = await harness.client.post(
        "/api/auth/refresh", json={"refresh_token": account.refresh_token}
    )
    assert replay.status_code == 401
    assert replay.json() == UNIFORM_401
    await _assert_uniform_401(harness, f"Bearer {rotated['access_token']}")
    after = await harness.client.post(
        "/api/auth/refresh", json={"refresh_token": rotated["refresh_token"]}
    )
    assert after.status_code == 401


async def test_two_tabs_refreshing_at_once_both_stay_signed_in(
    harness: Harness, make_account: AccountFactory
) -> None:
    """Two tabs refresh with the same token at the same moment (or the second a little later,
    within the grace window): both get the same new pair, and the session lives on."""
    account = await make_account()
    body = {"refresh_token": account.refresh_token}
    raced = await asyncio.gather(
        *(harness.client.post("/api/auth/refresh", json=body) for _ in range(4))
    )
    assert [r.status_code for r in raced] == [200] * 4, [r.text for r in raced]
    pairs = {(r.json()["access_token"], r.json()["refresh_token"]) for r in raced}
    assert len(pairs) == 1, "every tab got the same new pair"
    later = await harness.client.post("/api/auth/refresh", json=body)
    assert (later.json()["access_token"], later.json()["refresh_token"]) in pairs
    ((access, refresh),) = pairs
    me = await harness.client.get("/api/auth/me", headers={"Authorization": f"Bearer {access}"})
    assert me.status_code == 200
    # The new token rotates as usual; the first one is now two rotations old: reuse.
    assert (
        await harness.client.post("/api/auth/refresh", json={"refresh_token": refresh})
    ).status_code == 200
    replay = await harness.client.post("/api/auth/refresh", json=body)
    assert replay.status_code == 401
    assert (
        await harness.client.get("/api/auth/me", headers={"Authorization": f"Bearer {access}"})
    ).status_code == 401, "real reuse still ends the session"


async def test_the_grace_window_ends(harness: Harness, make_account: AccountFactory) -> None:
    account = await make_account()
    body = {"refresh_token": account.refresh_token}
    assert (await harness.client.post("/api/auth/refresh", json=body)).status_code == 200
    async with harness.app.state.ctx.sessionmaker() as db:
        await db.execute(update(AuthSession).values(rotated_at=utcnow() - timedelta(seconds=31)))
        await db.commit()
    assert (await harness.client.post("/api/auth/refresh", json=body)).status_code == 401


@pytest.mark.parametrize("token_kind", ["access", "garbage"])
async def test_refresh_rejects_non_refresh_tokens(
    harness: Harness, make_account: AccountFactory, token_kind: str
) -> None:
    account = await make_account()
    token = account.access_token if token_kind == "access" else "x.y.z"
    response = await harness.client.post("/api/auth/refresh", json={"refresh_token": token})
    assert response.status_code == 401
    assert response.json() == UNIFORM_401


async def test_logout_revokes_access_and_refresh(
    harness: Harness, make_account: AccountFactory
) -> None:
    account = await make_account()
    other_device = await harness.login(account.username, account.password)

    response = await harness.client.post("/api/auth/logout", headers=account.headers)
    assert response.status_code == 204
    await _assert_uniform_401(harness, f"Bearer {account.access_token}")
    refresh = await harness.client.post(
        "/api/auth/refresh", json={"refresh_token": account.refresh_token}
    )
    assert refresh.status_code == 401
    # Only that session ended: the other device is still signed in.
    other = await harness.client.get(
        "/api/auth/me", headers={"Authorization": f"Bearer {other_device['access_token']}"}
    )
    assert other.status_code == 200


async def test_disabled_users_existing_token_fails_on_next_request(
    harness: Harness, make_account: AccountFactory
) -> None:
    account = await make_account()
    assert (await harness.client.get("/api/auth/me", headers=account.headers)).status_code == 200
    admin = await harness.admin_headers()
    disable = await harness.client.patch(
        f"/api/admin/users/{account.id}", json={"status": "disabled"}, headers=admin
    )
    assert disable.status_code == 200
    await _assert_uniform_401(harness, f"Bearer {account.access_token}")
    refresh = await harness.client.post(
        "/api/auth/refresh", json={"refresh_token": account.refresh_token}
    )
    assert refresh.status_code == 401


async def test_deleted_users_token_is_rejected(
    harness: Harness, make_account: AccountFactory
) -> None:
    account = await make_account()
    admin = await harness.admin_headers()
    assert (
        await harness.client.delete(f"/api/admin/users/{account.id}", headers=admin)
    ).status_code == 204
    await _assert_uniform_401(harness, f"Bearer {account.access_token}")


async def test_sessions_list_and_revoke_one(harness: Harness, make_account: AccountFactory) -> None:
    account = await make_account()
    laptop = await harness.login(account.username, account.password)
    listed = await harness.client.get("/api/auth/sessions", headers=account.headers)
    assert listed.status_code == 200
    sessions = listed.json()
    assert len(sessions) == 2
    assert sum(1 for s in sessions if s["current"]) == 1
    laptop_sid = jwt.get_unverified_claims(laptop["access_token"])["sid"]
    revoke = await harness.client.delete(
        f"/api/auth/sessions/{laptop_sid}", headers=account.headers
    )
    assert revoke.status_code == 204
    await _assert_uniform_401(harness, f"Bearer {laptop['access_token']}")
    # Another user's session id is "not found", and stays alive.
    stranger = await make_account()
    stranger_sid = jwt.get_unverified_claims(stranger.access_token)["sid"]
    response = await harness.client.delete(
        f"/api/auth/sessions/{stranger_sid}", headers=account.headers
    )
    assert response.status_code == 404
    assert (await harness.client.get("/api/auth/me", headers=stranger.headers)).status_code == 200
