from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from app.core.errors import UnauthorizedError
from app.keys import service as key_service
from app.models import ApiKey
from app.models.base import utcnow
from tests.conftest import AccountFactory, Harness


async def test_create_shows_key_once_and_stores_only_its_hash(
    harness: Harness, make_account: AccountFactory
) -> None:
    account = await make_account()
    response = await harness.client.post(
        "/api/keys",
        json={"name": "laptop", "models": ["gpt-4o", "deepseek-chat", "gpt-4o"]},
        headers=account.headers,
    )
    assert response.status_code == 201
    created = response.json()
    key = created["key"]
    assert key.startswith("sk-")
    assert len(key) == 51
    assert created["prefix"] == key[:11]
    assert created["last4"] == key[-4:]
    assert created["masked"] == f"{key[:11]}…{key[-4:]}"
    assert created["models"] == ["gpt-4o", "deepseek-chat"]
    assert created["status"] == "active"

    async with harness.app.state.ctx.sessionmaker() as db:
        row = await db.scalar(select(ApiKey).where(ApiKey.id == created["id"]))
        assert row is not None
        assert row.key_hash == hashlib.sha256(key.encode()).hexdigest()
        assert key not in repr(row.__dict__)

    listed = await harness.client.get("/api/keys", headers=account.headers)
    fetched = await harness.client.get(f"/api/keys/{created['id']}", headers=account.headers)
    for response in (listed, fetched):
        assert response.status_code == 200
        assert key not in response.text
        assert key[11:-4] not in response.text
    assert listed.json()["total"] == 1


async def test_other_users_keys_are_404(harness: Harness, make_account: AccountFactory) -> None:
    owner, other = await make_account(), await make_account()
    key_id = (
        await harness.client.post("/api/keys", json={"name": "mine"}, headers=owner.headers)
    ).json()["id"]
    for method, body in (("GET", None), ("PATCH", {"name": "stolen"}), ("DELETE", None)):
        response = await harness.client.request(
            method, f"/api/keys/{key_id}", json=body, headers=other.headers
        )
        assert response.status_code == 404, method
    missing = await harness.client.get("/api/keys/987654", headers=other.headers)
    assert missing.status_code == 404
    assert (
        missing.json()
        == (await harness.client.get(f"/api/keys/{key_id}", headers=other.headers)).json()
    )
    # Nothing changed for the owner.
    mine = await harness.client.get(f"/api/keys/{key_id}", headers=owner.headers)
    assert mine.json()["name"] == "mine"
    assert mine.json()["status"] == "active"
    assert (await harness.client.get("/api/keys", headers=other.headers)).json()["total"] == 0


async def test_revoke_keeps_the_row_but_stops_the_key(
    harness: Harness, make_account: AccountFactory
) -> None:
    account = await make_account()
    created = (
        await harness.client.post("/api/keys", json={"name": "temp"}, headers=account.headers)
    ).json()
    revoke = await harness.client.delete(f"/api/keys/{created['id']}", headers=account.headers)
    assert revoke.status_code == 204
    assert (await harness.client.get("/api/keys", headers=account.headers)).json()["total"] == 0
    everything = await harness.client.get(
        "/api/keys", params={"include_revoked": True}, headers=account.headers
    )
    assert everything.json()["items"][0]["status"] == "revoked"
    async with harness.app.state.ctx.sessionmaker() as db:
        with pytest.raises(UnauthorizedError, match="revoked"):
            await key_service.authenticate(db, created["key"])
    patch = await harness.client.patch(
        f"/api/keys/{created['id']}", json={"name": "again"}, headers=account.headers
    )
    assert patch.status_code == 409


async def test_expiry_rules(harness: Harness, make_account: AccountFactory) -> None:
    account = await make_account()
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    refused = await harness.client.post(
        "/api/keys", json={"name": "old", "expires_at": past}, headers=account.headers
    )
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["loc"] == ["body", "expires_at"]

    soon = (datetime.now(UTC) + timedelta(days=30)).replace(microsecond=0)
    created = (
        await harness.client.post(
            "/api/keys",
            json={"name": "month", "expires_at": soon.isoformat()},
            headers=account.headers,
        )
    ).json()
    assert datetime.fromisoformat(created["expires_at"]) == soon

    # A time without a zone is read as UTC.
    naive = (datetime.now(UTC) + timedelta(days=1)).replace(tzinfo=None, microsecond=0)
    naive_key = (
        await harness.client.post(
            "/api/keys",
            json={"name": "naive", "expires_at": naive.isoformat()},
            headers=account.headers,
        )
    ).json()
    assert datetime.fromisoformat(naive_key["expires_at"]) == naive.replace(tzinfo=UTC)

    # Once the time passes, the key is reported expired and refused.
    async with harness.app.state.ctx.sessionmaker() as db:
        row = await db.get(ApiKey, created["id"])
        assert row is not None
        row.expires_at = utcnow() - timedelta(seconds=1)
        await db.commit()
    listed = await harness.client.get(f"/api/keys/{created['id']}", headers=account.headers)
    assert listed.json()["status"] == "expired"
    async with harness.app.state.ctx.sessionmaker() as db:
        with pytest.raises(UnauthorizedError, match="expired"):
            await key_service.authenticate(db, created["key"])


async def test_update_name_models_and_expiry(
    harness: Harness, make_account: AccountFactory
) -> None:
    account = await make_account()
    key_id = (
        await harness.client.post(
            "/api/keys", json={"name": "a", "models": ["m1"]}, headers=account.headers
        )
    ).json()["id"]
    updated = await harness.client.patch(
        f"/api/keys/{key_id}", json={"name": "b", "models": None}, headers=account.headers
    )
    assert updated.status_code == 200
    assert updated.json()["name"] == "b"
    assert updated.json()["models"] is None


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"name": ""},
        {"name": "x" * 65},
        {"name": "ok", "models": [""]},
        {"name": "ok", "models": "gpt-4o"},
        {"name": "ok", "models": ["m"] * 201},
        {"name": "ok", "expires_at": "tomorrow"},
        {"name": "ok", "user_id": 1},
    ],
)
async def test_bad_key_requests_are_422(
    harness: Harness, make_account: AccountFactory, body: dict[str, object]
) -> None:
    account = await make_account()
    response = await harness.client.post("/api/keys", json=body, headers=account.headers)
    assert response.status_code == 422
    assert (await harness.client.get("/api/keys", headers=account.headers)).json()["total"] == 0


async def test_admin_sees_and_revokes_anyones_keys(
    harness: Harness, make_account: AccountFactory
) -> None:
    alice, bob = await make_account(username="alice"), await make_account(username="bob")
    for account, name in ((alice, "alice-ci"), (bob, "bob-laptop"), (bob, "bob-server")):
        await harness.client.post("/api/keys", json={"name": name}, headers=account.headers)
    admin = await harness.admin_headers()

    everything = (await harness.client.get("/api/admin/keys", headers=admin)).json()
    assert everything["total"] == 3
    assert {item["username"] for item in everything["items"]} == {"alice", "bob"}
    assert all("key" not in item for item in everything["items"])
    bobs = (await harness.client.get("/api/admin/keys", params={"q": "bob"}, headers=admin)).json()
    assert bobs["total"] == 2

    target = next(i for i in everything["items"] if i["name"] == "alice-ci")
    assert (
        await harness.client.delete(f"/api/admin/keys/{target['id']}", headers=admin)
    ).status_code == 204
    revoked = (
        await harness.client.get("/api/admin/keys", params={"status": "revoked"}, headers=admin)
    ).json()
    assert [i["name"] for i in revoked["items"]] == ["alice-ci"]
    active = (
        await harness.client.get("/api/admin/keys", params={"status": "active"}, headers=admin)
    ).json()
    assert active["total"] == 2
    assert (await harness.client.delete("/api/admin/keys/424242", headers=admin)).status_code == 404


async def test_authenticate_unknown_key(harness: Harness) -> None:
    async with harness.app.state.ctx.sessionmaker() as db:
        with pytest.raises(UnauthorizedError, match="Invalid API key"):
            await key_service.authenticate(db, "sk-" + "x" * 48)


async def test_the_call_log_records_when_each_key_was_last_used(
    harness: Harness, make_account: AccountFactory
) -> None:
    """One batch with calls from several keys: each key's last use is its latest call's time."""
    account = await make_account()
    ids = []
    for name in ("a", "b", "c"):
        created = await harness.client.post(
            "/api/keys", json={"name": name}, headers=account.headers
        )
        ids.append(created.json()["id"])
    writer = harness.app.state.ctx.call_logs
    base = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    for index in range(12):
        writer.submit(
            {
                "created_at": base + timedelta(minutes=index),
                "request_id": f"last-use-{index}",
                "source": "api",
                "user_id": account.id,
                "api_key_id": ids[index % 2],  # a and b; c is never used
                "requested_model": "m",
                "channels_tried": [],
                "stream": False,
                "prompt_tokens": 0,
                "completion_tokens": 0,
                "reasoning_tokens": 0,
                "cached_tokens": 0,
                "total_tokens": 0,
                "status_code": 200,
                "success": True,
                "end_reason": "done",
                "usage_source": "none",
                "duration_ms": 5,
            }
        )
    await writer.flush()
    listed = await harness.client.get("/api/keys", headers=account.headers)
    last_used = {item["id"]: item["last_used_at"] for item in listed.json()["items"]}
    assert datetime.fromisoformat(last_used[ids[0]]) == base + timedelta(minutes=10)
    assert datetime.fromisoformat(last_used[ids[1]]) == base + timedelta(minutes=11)
    assert last_used[ids[2]] is None
