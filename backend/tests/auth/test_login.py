from __future__ import annotations

import time

import bcrypt
import httpx
import pytest
from sqlalchemy import select, update

from app.models import User
from tests.conftest import ADMIN_PASSWORD, ADMIN_USERNAME, AccountFactory, Harness, HarnessFactory


async def test_login_returns_tokens_and_user(
    harness: Harness, make_account: AccountFactory
) -> None:
    account = await make_account(password="correct horse battery")
    response = await harness.client.post(
        "/api/auth/login", json={"username": account.username, "password": account.password}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 30 * 60
    assert body["user"]["username"] == account.username
    me = await harness.client.get(
        "/api/auth/me", headers={"Authorization": f"Bearer {body['access_token']}"}
    )
    assert me.status_code == 200
    assert me.json()["id"] == account.id


async def test_login_by_email_and_any_username_case(
    harness: Harness, make_account: AccountFactory
) -> None:
    account = await make_account(username="Frank", email="frank@example.com")
    for identifier in ("frank@example.com", "FRANK@example.com", "frank", "FRANK"):
        response = await harness.client.post(
            "/api/auth/login", json={"username": identifier, "password": account.password}
        )
        assert response.status_code == 200, identifier


async def test_unknown_user_and_wrong_password_look_identical(
    harness: Harness, make_account: AccountFactory
) -> None:
    account = await make_account()
    wrong = await harness.client.post(
        "/api/auth/login", json={"username": account.username, "password": "not the password"}
    )
    missing = await harness.client.post(
        "/api/auth/login", json={"username": "nobody-here", "password": "not the password"}
    )
    assert wrong.status_code == missing.status_code == 401
    assert wrong.json() == missing.json()
    assert wrong.headers.get("www-authenticate") == missing.headers.get("www-authenticate")


async def test_unknown_user_costs_the_same_password_hash(
    harness: Harness, make_account: AccountFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Equal timing by construction: both paths run exactly one Argon2id verification."""
    account = await make_account()
    hasher = harness.app.state.ctx.hasher
    verified: list[str] = []
    real_verify = hasher._verify_sync

    def spy(password: str, password_hash: str) -> tuple[bool, str | None]:
        verified.append(password_hash)
        return real_verify(password, password_hash)

    monkeypatch.setattr(hasher, "_verify_sync", spy)
    for username in (account.username, "no-such-user"):
        response = await harness.client.post(
            "/api/auth/login", json={"username": username, "password": "wrong-password"}
        )
        assert response.status_code == 401
    assert len(verified) == 2
    assert all(h.startswith("$argon2id$") for h in verified)
    # Same cost parameters for the real and the dummy hash.
    assert verified[0].split("$")[3] == verified[1].split("$")[3]


@pytest.mark.parametrize(
    "password",
    [
        "a-very-long-passphrase-that-goes-on-and-on-and-on-well-past-64-chars-ok",
        "我们的口令由二十五个汉字组成这样就超过了七十二字节",
    ],
)
async def test_long_and_cjk_passwords_work(harness: Harness, password: str) -> None:
    if "汉" in password:
        assert len(password) == 25
        assert len(password.encode()) > 72
    else:
        assert len(password) >= 64
    reg = await harness.client.post(
        "/api/auth/register", json={"username": "longpw", "password": password}
    )
    assert reg.status_code == 201
    assert (await harness.login("longpw", password))["access_token"]


async def test_password_sharing_the_first_72_bytes_does_not_log_in(harness: Harness) -> None:
    real = "b" * 72 + "-real-ending"
    assert (
        await harness.client.post(
            "/api/auth/register", json={"username": "prefix", "password": real}
        )
    ).status_code == 201
    for impostor in ("b" * 72, "b" * 72 + "-fake-ending"):
        response = await harness.client.post(
            "/api/auth/login", json={"username": "prefix", "password": impostor}
        )
        assert response.status_code == 401


async def test_oauth2_password_form_login_for_swagger(
    harness: Harness, make_account: AccountFactory
) -> None:
    account = await make_account()
    response = await harness.client.post(
        "/api/auth/token", data={"username": account.username, "password": account.password}
    )
    assert response.status_code == 200
    assert response.json()["token_type"] == "bearer"
    empty = await harness.client.post(
        "/api/auth/token", data={"username": account.username, "password": ""}
    )
    assert empty.status_code == 422
    # The OpenAPI document wires Swagger's Authorize button to the form endpoint.
    schema = (await harness.client.get("/openapi.json")).json()
    flows = schema["components"]["securitySchemes"]["OAuth2PasswordBearer"]["flows"]
    assert flows["password"]["tokenUrl"] == "/api/auth/token"


async def test_admin_login_refuses_non_admins(
    harness: Harness, make_account: AccountFactory
) -> None:
    account = await make_account()
    refused = await harness.client.post(
        "/api/auth/admin/login", json={"username": account.username, "password": account.password}
    )
    assert refused.status_code == 403
    assert refused.json()["code"] == "not_admin"
    assert "access_token" not in refused.text
    wrong = await harness.client.post(
        "/api/auth/admin/login", json={"username": ADMIN_USERNAME, "password": "nope-nope"}
    )
    assert wrong.status_code == 401
    ok = await harness.client.post(
        "/api/auth/admin/login", json={"username": ADMIN_USERNAME, "password": ADMIN_PASSWORD}
    )
    assert ok.status_code == 200
    assert ok.json()["user"]["role"] == "admin"


async def test_disabled_account_cannot_log_in(
    harness: Harness, make_account: AccountFactory
) -> None:
    account = await make_account()
    admin = await harness.admin_headers()
    await harness.client.patch(
        f"/api/admin/users/{account.id}", json={"status": "disabled"}, headers=admin
    )
    response = await harness.client.post(
        "/api/auth/login", json={"username": account.username, "password": account.password}
    )
    assert response.status_code == 403
    assert response.json()["code"] == "account_disabled"


async def test_login_records_last_login(harness: Harness, make_account: AccountFactory) -> None:
    account = await make_account()
    async with harness.app.state.ctx.sessionmaker() as db:
        user = await db.scalar(select(User).where(User.id == account.id))
        assert user is not None
        assert user.last_login_at is not None


async def test_login_body_validation(client: httpx.AsyncClient) -> None:
    assert (await client.post("/api/auth/login", json={"username": "x"})).status_code == 422
    assert (
        await client.post("/api/auth/login", json={"username": "x", "password": ""})
    ).status_code == 422
    assert (
        await client.post(
            "/api/auth/login", content=b"{not json", headers={"content-type": "application/json"}
        )
    ).status_code == 422


async def test_throttle_blocks_the_attacker_not_the_owner(
    harness_factory: HarnessFactory,
) -> None:
    harness = await harness_factory(
        runtime={"login_max_failures_per_account_ip": 3, "login_max_failures_per_ip": 100}
    )
    await harness.client.post(
        "/api/auth/register", json={"username": "victim", "password": "victim's password"}
    )
    attacker = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=harness.app, client=("198.51.100.66", 1)),
        base_url="http://testserver",
    )
    owner = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=harness.app, client=("192.0.2.5", 1)),
        base_url="http://testserver",
    )
    async with attacker, owner:
        statuses = [
            (
                await attacker.post(
                    "/api/auth/login", json={"username": "victim", "password": f"guess-{n}"}
                )
            ).status_code
            for n in range(5)
        ]
        assert statuses == [401, 401, 401, 429, 429]
        # Even the right password is refused to the attacker's address while it is throttled.
        blocked = await attacker.post(
            "/api/auth/login", json={"username": "victim", "password": "victim's password"}
        )
        assert blocked.status_code == 429
        assert int(blocked.headers["Retry-After"]) > 0
        # The owner, from their own address, signs in at once.
        ok = await owner.post(
            "/api/auth/login", json={"username": "victim", "password": "victim's password"}
        )
        assert ok.status_code == 200


async def test_per_ip_throttle_stops_spraying_many_accounts(
    harness_factory: HarnessFactory,
) -> None:
    harness = await harness_factory(
        runtime={"login_max_failures_per_ip": 4, "login_max_failures_per_account_ip": 100}
    )
    statuses = [
        (
            await harness.client.post(
                "/api/auth/login", json={"username": f"target{n}", "password": "guess"}
            )
        ).status_code
        for n in range(6)
    ]
    assert statuses == [401, 401, 401, 401, 429, 429]


async def test_success_clears_the_account_counter(harness_factory: HarnessFactory) -> None:
    harness = await harness_factory(
        runtime={"login_max_failures_per_account_ip": 3, "login_max_failures_per_ip": 100}
    )
    await harness.client.post(
        "/api/auth/register", json={"username": "forgetful", "password": "right password"}
    )
    for _ in range(2):
        await harness.client.post(
            "/api/auth/login", json={"username": "forgetful", "password": "typo"}
        )
    await harness.login("forgetful", "right password")
    for _ in range(2):
        r = await harness.client.post(
            "/api/auth/login", json={"username": "forgetful", "password": "typo"}
        )
        assert r.status_code == 401


async def test_throttle_state_is_shared_through_redis(
    harness_factory: HarnessFactory, redis_url: str
) -> None:
    """Two app instances on one Redis see each other's failures (as two processes would)."""
    redis_group = {"url": redis_url, "key_prefix": "throttle-test-" + str(time.time_ns())[-8:]}
    auth = {"login_max_failures_per_account_ip": 2, "login_max_failures_per_ip": 100}
    first = await harness_factory(redis=redis_group, runtime=auth)
    second = await harness_factory(redis=redis_group, runtime=auth)
    for app in (first, second):
        r = await app.client.post("/api/auth/login", json={"username": "shared", "password": "x"})
        assert r.status_code == 401
    r = await first.client.post("/api/auth/login", json={"username": "shared", "password": "x"})
    assert r.status_code == 429


async def _store_hash(harness: Harness, username: str, password_hash: str) -> None:
    async with harness.app.state.ctx.sessionmaker() as db:
        await db.execute(
            update(User).where(User.username == username).values(password_hash=password_hash)
        )
        await db.commit()


LEGACY_BCRYPT = bcrypt.hashpw(b"legacy-pw-01", bcrypt.gensalt(rounds=4)).decode()


@pytest.mark.parametrize(
    ("stored", "password"),
    [
        (LEGACY_BCRYPT, "x" * 73),
        (LEGACY_BCRYPT, "口令" * 20),
        ("$2b$12$short", "legacy-pw-01"),
        ("$argon2id$v=19$m=8192,t=1,p=1$bad$bad", "legacy-pw-01"),
        ("not-a-hash-at-all", "x" * 200),
    ],
    ids=["bcrypt-73-bytes", "bcrypt-cjk", "short-bcrypt", "bad-argon2", "unknown-format"],
)
async def test_a_password_the_stored_hash_cannot_check_is_wrong_credentials(
    harness: Harness, make_account: AccountFactory, stored: str, password: str
) -> None:
    """Sign-in, admin sign-in and the password-change check all answer as for a wrong password."""
    account = await make_account()
    await _store_hash(harness, account.username, stored)
    for path in ("/api/auth/login", "/api/auth/admin/login"):
        response = await harness.client.post(
            path, json={"username": account.username, "password": password}
        )
        assert response.status_code == 401, response.text
    response = await harness.client.post(
        "/api/auth/me/password",
        json={"current_password": password, "new_password": "a brand new password"},
        headers=account.headers,
    )
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"][-1] == "current_password"


async def test_a_legacy_bcrypt_account_signs_in_and_is_upgraded(
    harness: Harness, make_account: AccountFactory
) -> None:
    account = await make_account()
    await _store_hash(harness, account.username, LEGACY_BCRYPT)
    assert (await harness.login(account.username, "legacy-pw-01"))["access_token"]
    async with harness.app.state.ctx.sessionmaker() as db:
        user = await db.scalar(select(User).where(User.username == account.username))
    assert user is not None
    assert user.password_hash.startswith("$argon2id$")
