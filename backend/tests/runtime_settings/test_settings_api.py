"""Runtime settings over HTTP: read, validated updates, resets, history, public view, live effect."""

from __future__ import annotations

from typing import Any

from app.composition import AppContext
from tests.conftest import ADMIN_USERNAME, AccountFactory, Harness, HarnessFactory


def ctx_of(harness: Harness) -> AppContext:
    ctx: AppContext = harness.app.state.ctx
    return ctx


async def test_admins_read_every_setting_users_cannot(
    harness: Harness, make_account: AccountFactory
) -> None:
    admin = await harness.admin_headers()
    response = await harness.client.get("/api/admin/settings", headers=admin)
    assert response.status_code == 200
    values = response.json()
    assert values["site_name"] == "AI Chat Gateway"
    assert values["llm_concurrency"] == 64
    assert {"registration_enabled", "default_user_rpm", "ip_rpm", "log_retention_days"} <= set(
        values
    )
    user = await make_account()
    assert (
        await harness.client.get("/api/admin/settings", headers=user.headers)
    ).status_code == 403
    assert (await harness.client.get("/api/admin/settings")).status_code == 401
    forbidden = await harness.client.put(
        "/api/admin/settings", json={"site_name": "x"}, headers=user.headers
    )
    assert forbidden.status_code == 403


async def test_schema_describes_types_bounds_and_defaults(harness: Harness) -> None:
    response = await harness.client.get(
        "/api/admin/settings/schema", headers=await harness.admin_headers()
    )
    items = {item["key"]: item for item in response.json()["items"]}
    concurrency = items["llm_concurrency"]
    assert concurrency["type"] == "integer"
    assert concurrency["ge"] == 1
    assert concurrency["le"] == 100_000
    assert concurrency["default"] == 64
    assert concurrency["overridden"] is False
    assert concurrency["description"]
    assert items["registration_enabled"]["type"] == "boolean"
    assert items["registration_enabled"]["public"] is True
    assert items["site_name"]["max_length"] == 64


async def test_update_applies_at_once_and_is_recorded(harness: Harness) -> None:
    admin = await harness.admin_headers()
    response = await harness.client.put(
        "/api/admin/settings",
        json={"site_name": "团队 AI", "llm_concurrency": 5, "announcement": "维护通知"},
        headers=admin,
    )
    assert response.status_code == 200, response.text
    assert response.json()["site_name"] == "团队 AI"
    ctx = ctx_of(harness)
    assert ctx.runtime.current.llm_concurrency == 5
    assert ctx.gate.size == 5  # the semaphore was resized without a restart
    public = (await harness.client.get("/api/settings/public")).json()
    assert public["site_name"] == "团队 AI"
    assert public["announcement"] == "维护通知"
    assert "llm_concurrency" not in public  # only public options
    history = (await harness.client.get("/api/admin/settings/history", headers=admin)).json()
    changes = {item["key"]: item for item in history["items"]}
    assert history["total"] == 3
    assert changes["llm_concurrency"]["old_value"] == 64
    assert changes["llm_concurrency"]["new_value"] == 5
    assert changes["llm_concurrency"]["changed_by"] == ADMIN_USERNAME
    assert changes["llm_concurrency"]["action"] == "update"
    schema = (await harness.client.get("/api/admin/settings/schema", headers=admin)).json()
    site = next(item for item in schema["items"] if item["key"] == "site_name")
    assert site["overridden"] is True
    assert site["updated_by"] == ADMIN_USERNAME


async def _rejected(harness: Harness, body: dict[str, Any]) -> dict[str, Any]:
    admin = await harness.admin_headers()
    before = (await harness.client.get("/api/admin/settings", headers=admin)).json()
    response = await harness.client.put("/api/admin/settings", json=body, headers=admin)
    assert response.status_code == 422, response.text
    after = (await harness.client.get("/api/admin/settings", headers=admin)).json()
    assert after == before  # nothing changed
    return dict(response.json())


async def test_invalid_updates_name_the_field_and_the_rule(harness: Harness) -> None:
    error = await _rejected(harness, {"llm_concurrency": 0})
    assert error["detail"][0]["loc"] == ["body", "llm_concurrency"]
    assert "greater than or equal to 1" in error["detail"][0]["msg"]
    error = await _rejected(harness, {"ip_rpm": "lots"})
    assert error["detail"][0]["loc"] == ["body", "ip_rpm"]
    error = await _rejected(harness, {"no_such_option": 1})
    assert "no such setting" in error["detail"][0]["msg"]
    error = await _rejected(harness, {"site_name": ""})
    assert error["detail"][0]["loc"] == ["body", "site_name"]
    # A rule across fields: the max cooldown may not be below the cooldown.
    error = await _rejected(harness, {"breaker_max_cooldown_seconds": 5})
    assert "breaker_cooldown_seconds" in error["detail"][0]["msg"]
    # One bad value spoils the whole update: the good one is not applied either.
    await _rejected(harness, {"site_name": "ok", "llm_concurrency": -1})
    history = await harness.client.get(
        "/api/admin/settings/history", headers=await harness.admin_headers()
    )
    assert history.json()["total"] == 0
    not_an_object = await harness.client.put(
        "/api/admin/settings", json=[1, 2], headers=await harness.admin_headers()
    )
    assert not_an_object.status_code == 422


async def test_reset_returns_to_the_default(harness: Harness) -> None:
    admin = await harness.admin_headers()
    await harness.client.put("/api/admin/settings", json={"max_attempts": 7}, headers=admin)
    response = await harness.client.delete("/api/admin/settings/max_attempts", headers=admin)
    assert response.status_code == 200
    assert response.json()["max_attempts"] == 3
    assert ctx_of(harness).runtime.current.max_attempts == 3
    history = (await harness.client.get("/api/admin/settings/history", headers=admin)).json()
    assert [item["action"] for item in history["items"]] == ["reset", "update"]
    unknown = await harness.client.delete("/api/admin/settings/nope", headers=admin)
    assert unknown.status_code == 422


async def test_environment_sets_defaults_and_admin_choices_survive_restarts(
    harness_factory: HarnessFactory,
) -> None:
    first = await harness_factory(runtime={"ip_rpm": 50, "max_attempts": 4})
    admin = await first.admin_headers()
    assert (await first.client.get("/api/admin/settings", headers=admin)).json()["ip_rpm"] == 50
    await first.client.put("/api/admin/settings", json={"max_attempts": 6}, headers=admin)
    # A later start with other defaults: the default that nobody chose follows the environment,
    # the admin's choice stays.
    second = await harness_factory(runtime={"ip_rpm": 70, "max_attempts": 2})
    values = (
        await second.client.get("/api/admin/settings", headers=await second.admin_headers())
    ).json()
    assert values["ip_rpm"] == 70
    assert values["max_attempts"] == 6


async def test_registration_can_be_closed(harness: Harness) -> None:
    admin = await harness.admin_headers()
    await harness.client.put(
        "/api/admin/settings", json={"registration_enabled": False}, headers=admin
    )
    assert (await harness.client.get("/api/settings/public")).json()[
        "registration_enabled"
    ] is False
    response = await harness.client.post(
        "/api/auth/register", json={"username": "newcomer", "password": "long enough pass"}
    )
    assert response.status_code == 403
    assert response.json()["code"] == "registration_closed"
    # Admins can still create accounts.
    created = await harness.client.post(
        "/api/admin/users",
        json={"username": "newcomer", "password": "long enough pass"},
        headers=admin,
    )
    assert created.status_code == 201
