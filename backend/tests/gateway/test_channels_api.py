"""`/api/admin/channels`: CRUD, validation of where traffic may go, test and fetch-models."""

from __future__ import annotations

import pytest

from app.devtools.mock_upstream import MockServer
from tests.live import UPSTREAM_KEY, GatewayFactory, LiveGateway


def test_create_masks_the_key_everywhere(gateway: LiveGateway, mock_upstream: MockServer) -> None:
    created = gateway.create_channel(
        base_url=mock_upstream.base_url() + "/", tags=["cn", "cn"], notes="primary"
    )
    assert created["api_key_hint"] == "sk-…" + UPSTREAM_KEY[-4:]
    assert created["base_url"] == mock_upstream.base_url()  # trailing slash removed
    assert created["tags"] == ["cn"]
    assert created["status"] == "enabled"
    assert created["connect_timeout"] == 10.0
    for response in (
        gateway.http.get("/api/admin/channels", headers=gateway.admin),
        gateway.http.get(f"/api/admin/channels/{created['id']}", headers=gateway.admin),
    ):
        assert response.status_code == 200
        assert UPSTREAM_KEY not in response.text
        assert "api_key_encrypted" not in response.text
    stored = gateway.channels_in_db()[0]
    assert UPSTREAM_KEY not in stored.api_key_encrypted


def test_update_enable_disable_delete(gateway: LiveGateway, mock_upstream: MockServer) -> None:
    channel = gateway.create_channel(base_url=mock_upstream.base_url())
    path = f"/api/admin/channels/{channel['id']}"
    updated = gateway.http.patch(
        path,
        json={
            "priority": 7,
            "models": ["a", "b"],
            "rpm_limit": 60,
            "api_key": "sk-replacement-9876",
        },
        headers=gateway.admin,
    ).json()
    assert (updated["priority"], updated["models"], updated["rpm_limit"]) == (7, ["a", "b"], 60)
    assert updated["api_key_hint"] == "sk-…9876"
    cleared = gateway.http.patch(path, json={"rpm_limit": None}, headers=gateway.admin).json()
    assert cleared["rpm_limit"] is None
    assert cleared["priority"] == 7
    off = gateway.http.post(f"{path}/disable", headers=gateway.admin).json()
    assert (off["status"], off["status_reason"]) == ("disabled", "admin")
    on = gateway.http.post(f"{path}/enable", headers=gateway.admin).json()
    assert on["status"] == "enabled"
    assert gateway.http.delete(path, headers=gateway.admin).status_code == 204
    assert gateway.http.get(path, headers=gateway.admin).status_code == 404


def test_changes_apply_to_routing_at_once(gateway: LiveGateway, mock_upstream: MockServer) -> None:
    channel = gateway.create_channel(base_url=mock_upstream.base_url(), models=["alpha"])
    key = gateway.create_key()
    auth = {"Authorization": f"Bearer {key}"}
    body = {"model": "beta", "messages": [{"role": "user", "content": "x"}]}
    assert gateway.http.post("/v1/chat/completions", json=body, headers=auth).status_code == 404
    gateway.http.patch(
        f"/api/admin/channels/{channel['id']}",
        json={"models": ["alpha", "beta"]},
        headers=gateway.admin,
    )
    assert gateway.http.post("/v1/chat/completions", json=body, headers=auth).status_code == 200
    gateway.http.post(f"/api/admin/channels/{channel['id']}/disable", headers=gateway.admin)
    assert gateway.http.post("/v1/chat/completions", json=body, headers=auth).status_code == 404


@pytest.mark.parametrize(
    ("base_url", "fragment"),
    [
        ("ftp://example.com/v1", "http"),
        ("http:///v1", "host"),
        ("http://user:pass@example.com/v1", "key field"),
        ("http://example.com/v1?x=1", "query"),
        ("http://169.254.169.254/latest", "link-local"),
        ("http://100.100.100.200/v1", "metadata"),
        ("http://[fe80::1]/v1", "link-local"),
        ("http://[fd00:ec2::254]/v1", "metadata"),
        ("http://[::ffff:169.254.169.254]/v1", "link-local"),
        ("http://0.0.0.0:8080/v1", "never allowed"),
    ],
)
def test_refused_base_urls(gateway: LiveGateway, base_url: str, fragment: str) -> None:
    response = gateway.http.post(
        "/api/admin/channels",
        json={"name": "x", "base_url": base_url, "api_key": "sk-x", "models": ["m"]},
        headers=gateway.admin,
    )
    assert response.status_code == 422, response.text
    assert fragment in response.text
    assert gateway.channels_in_db() == []


def test_private_upstreams_allowed_by_default_and_refusable(
    gateway_factory: GatewayFactory, mock_upstream: MockServer
) -> None:
    strict = gateway_factory(runtime={"allow_private_upstreams": False})
    refused = strict.http.post(
        "/api/admin/channels",
        json={
            "name": "x",
            "base_url": mock_upstream.base_url(),
            "api_key": "sk-x",
            "models": ["m"],
        },
        headers=strict.admin,
    )
    assert refused.status_code == 422
    assert "private" in refused.json()["detail"][0]["msg"]


def test_private_refusal_also_applies_when_connecting(
    gateway_factory: GatewayFactory, mock_upstream: MockServer
) -> None:
    """A channel saved while private addresses were allowed is refused on every connect later."""
    gateway = gateway_factory()
    gateway.create_channel(base_url=mock_upstream.base_url())
    refuse_private_upstreams(gateway)
    key = gateway.create_key()
    response = gateway.http.post(
        "/v1/chat/completions",
        json={"model": "mock-gpt", "messages": [{"role": "user", "content": "x"}]},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert response.status_code == 502
    assert "not reachable from this gateway" in response.json()["error"]["message"]
    (row,) = gateway.wait_for_logs(1)
    assert "private" in str(row.error_message)  # the detail, for admins
    assert mock_upstream.state.total == 0


def test_dns_names_are_checked_after_resolution(
    gateway_factory: GatewayFactory, mock_upstream: MockServer
) -> None:
    """`localhost` resolves to loopback: refused on connect when private upstreams are off."""
    gateway = gateway_factory()
    gateway.create_channel(base_url=f"http://localhost:{mock_upstream.port}/v1")
    refuse_private_upstreams(gateway)
    response = gateway.http.post(
        "/v1/chat/completions",
        json={"model": "mock-gpt", "messages": [{"role": "user", "content": "x"}]},
        headers={"Authorization": f"Bearer {gateway.create_key()}"},
    )
    assert response.status_code == 502
    assert mock_upstream.state.total == 0


def test_channel_test_reports_latency_or_a_scrubbed_error(
    gateway: LiveGateway, mock_upstream: MockServer
) -> None:
    good = gateway.create_channel(base_url=mock_upstream.base_url())
    result = gateway.http.post(
        f"/api/admin/channels/{good['id']}/test", json={}, headers=gateway.admin
    ).json()
    assert result["ok"] is True
    assert result["model"] == "mock-gpt"
    assert result["latency_ms"] >= 0
    assert gateway.channel(good["id"])["last_test_ok"] is True

    mock_upstream.set_profile("echo", status=401, echo_key=1)
    bad = gateway.create_channel(name="bad", base_url=mock_upstream.base_url("echo"))
    response = gateway.http.post(
        f"/api/admin/channels/{bad['id']}/test", json={"model": "mock-gpt"}, headers=gateway.admin
    )
    result = response.json()
    assert result["ok"] is False
    assert result["status_code"] == 401
    assert UPSTREAM_KEY not in response.text  # the upstream echoed it; we scrubbed it
    assert UPSTREAM_KEY[-4:] in result["error"]
    assert UPSTREAM_KEY not in (gateway.channel(bad["id"])["last_test_error"] or "")


def test_fetch_models(gateway: LiveGateway, mock_upstream: MockServer) -> None:
    channel = gateway.create_channel(base_url=mock_upstream.base_url(), models=[])
    listed = gateway.http.post(
        f"/api/admin/channels/{channel['id']}/fetch-models", headers=gateway.admin
    ).json()
    assert "mock-gpt" in listed["models"]
    assert gateway.channel(channel["id"])["models"] == []
    gateway.http.post(
        f"/api/admin/channels/{channel['id']}/fetch-models?apply=true", headers=gateway.admin
    )
    assert gateway.channel(channel["id"])["models"] == listed["models"]
    unsaved = gateway.http.post(
        "/api/admin/channels/fetch-models",
        json={"base_url": mock_upstream.base_url(), "api_key": "sk-anything"},
        headers=gateway.admin,
    )
    assert unsaved.json()["models"] == listed["models"]
    mock_upstream.set_profile("locked", require_key="sk-right")
    refused = gateway.http.post(
        "/api/admin/channels/fetch-models",
        json={"base_url": mock_upstream.base_url("locked"), "api_key": "sk-wrong"},
        headers=gateway.admin,
    )
    assert refused.status_code == 422
    assert "401" in str(refused.json()["detail"])


def test_channel_routes_are_admin_only(gateway: LiveGateway) -> None:
    gateway.http.post(
        "/api/admin/users",
        json={"username": "plain", "password": "plain password"},
        headers=gateway.admin,
    )
    token = gateway.http.post(
        "/api/auth/login", json={"username": "plain", "password": "plain password"}
    ).json()["access_token"]
    response = gateway.http.get("/api/admin/channels", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 403


@pytest.mark.parametrize(
    "body",
    [
        {"name": "x", "base_url": "http://127.0.0.1:1/v1", "models": ["m"]},
        {"name": "x", "base_url": "http://127.0.0.1:1/v1", "api_key": "", "models": ["m"]},
        {"name": "", "base_url": "http://127.0.0.1:1/v1", "api_key": "k"},
        {"name": "x", "base_url": "http://127.0.0.1:1/v1", "api_key": "k", "weight": 0},
        {
            "name": "x",
            "base_url": "http://127.0.0.1:1/v1",
            "api_key": "k",
            "first_byte_timeout": -1,
        },
        {
            "name": "x",
            "base_url": "http://127.0.0.1:1/v1",
            "api_key": "k",
            "type": "anthropic-native",
        },
        {"name": "x", "base_url": "http://127.0.0.1:1/v1", "api_key": "k", "models": "m"},
    ],
)
def test_invalid_channel_bodies_are_422(gateway: LiveGateway, body: dict[str, object]) -> None:
    response = gateway.http.post("/api/admin/channels", json=body, headers=gateway.admin)
    assert response.status_code == 422
    assert gateway.channels_in_db() == []


def refuse_private_upstreams(gateway: LiveGateway) -> None:
    """Switch the runtime setting off the way an admin does."""
    response = gateway.http.put(
        "/api/admin/settings", json={"allow_private_upstreams": False}, headers=gateway.admin
    )
    assert response.status_code == 200, response.text
    assert response.json()["allow_private_upstreams"] is False
