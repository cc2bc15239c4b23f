"""Where a channel's traffic (and its key) may go: refused addresses, disguised addresses, redirects.

Basic refusals (schemes, metadata and link-local literals, private ranges, DNS names that resolve
to loopback) are in tests/gateway/test_channels_api.py; these are the ways around them.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import update

from app.devtools.mock_upstream import MockServer
from app.models import Channel
from tests.live import UPSTREAM_KEY, LiveGateway

MESSAGES = [{"role": "user", "content": "x"}]


@pytest.mark.parametrize(
    ("base_url", "fragment"),
    [
        ("file:///etc/passwd", "http"),
        ("gopher://127.0.0.1:6379/_INFO", "http"),
        ("http://2852039166/latest", "dotted form"),  # 169.254.169.254 as one number
        ("http://0xa9fea9fe/latest", "dotted form"),
        ("http://0xa9.0xfe.0xa9.0xfe/latest", "dotted form"),
        ("http://0251.0376.0251.0376/latest", "dotted form"),  # octal
        ("http://169.254.43518/latest", "dotted form"),
        ("http://017700000001:6379/v1", "dotted form"),  # 127.0.0.1 in octal
        ("http://[::ffff:a9fe:a9fe]/latest", "link-local"),  # IPv4-mapped, hex
        ("http://@169.254.169.254/latest", "key field"),
        ("http://api.openai.com@169.254.169.254/v1", "key field"),
        ("http://api.openai.com:x@169.254.169.254/v1", "key field"),
        ("http://api.openai.com\\@169.254.169.254/v1", "key field"),
        ("http://169.254.169.254#@api.openai.com/v1", "fragment"),
    ],
)
def test_disguised_addresses_are_refused_on_save(
    gateway: LiveGateway, base_url: str, fragment: str
) -> None:
    for path, body in (
        (
            "/api/admin/channels",
            {"name": "x", "base_url": base_url, "api_key": "sk-x", "models": []},
        ),
        ("/api/admin/channels/fetch-models", {"base_url": base_url, "api_key": "sk-x"}),
    ):
        response = gateway.http.post(path, json=body, headers=gateway.admin)
        assert response.status_code == 422, (path, response.text)
        assert fragment in response.text, response.text
    assert gateway.channels_in_db() == []


def test_updating_a_channel_to_a_refused_address_is_refused(
    gateway: LiveGateway, mock_upstream: MockServer
) -> None:
    channel = gateway.create_channel(base_url=mock_upstream.base_url())
    response = gateway.http.patch(
        f"/api/admin/channels/{channel['id']}",
        json={"base_url": "http://0xa9fea9fe/v1"},
        headers=gateway.admin,
    )
    assert response.status_code == 422
    assert gateway.channel(channel["id"])["base_url"] == mock_upstream.base_url()


@pytest.mark.parametrize("host", ["2852039166", "169.254.169.254", "[::ffff:169.254.169.254]"])
def test_a_refused_address_already_stored_is_refused_when_connecting(
    gateway: LiveGateway, mock_upstream: MockServer, host: str
) -> None:
    """A row written before a rule existed (or by hand) is checked again on every connection."""
    channel = gateway.create_channel(base_url=mock_upstream.base_url())

    async def point_elsewhere() -> None:
        async with gateway.ctx.sessionmaker() as db:
            await db.execute(
                update(Channel)
                .where(Channel.id == channel["id"])
                .values(base_url=f"http://{host}:{mock_upstream.port}/v1")
            )
            await db.commit()
        gateway.ctx.registry.invalidate()

    gateway.run(point_elsewhere)
    response = gateway.http.post(
        "/v1/chat/completions",
        json={"model": "mock-gpt", "messages": MESSAGES},
        headers={"Authorization": f"Bearer {gateway.create_key()}"},
    )
    assert response.status_code == 502, response.text
    # Refused before any connection: by the address guard, or (a number that is no IP syntax)
    # by the HTTP client's URL parser; never a timeout while trying to connect.
    message = response.json()["error"]["message"]
    assert "never allowed" in message or "not a canonical IPv4 address" in message, message
    assert UPSTREAM_KEY not in response.text


def _redirected(mock: MockServer) -> dict[str, Any]:
    """A channel whose upstream answers every call with a redirect to another place."""
    mock.set_profile("elsewhere")
    mock.set_profile("redirecting", redirect=mock.base_url("elsewhere") + "/chat/completions")
    return {"base_url": mock.base_url("redirecting")}


def _key_went_only_to_the_channel(mock: MockServer) -> None:
    requests = mock.state.requests
    assert requests, "the channel's own host was called"
    assert {r.profile for r in requests} == {"redirecting"}, "the redirect was not followed"
    assert all(r.authorization == f"Bearer {UPSTREAM_KEY}" for r in requests)


@pytest.mark.parametrize("stream", [False, True])
def test_calls_do_not_follow_redirects(
    gateway: LiveGateway, mock_upstream: MockServer, stream: bool
) -> None:
    gateway.create_channel(**_redirected(mock_upstream))
    response = gateway.http.post(
        "/v1/chat/completions",
        json={"model": "mock-gpt", "messages": MESSAGES, "stream": stream},
        headers={"Authorization": f"Bearer {gateway.create_key()}"},
    )
    assert response.status_code == 502, response.text
    assert response.json()["error"]["code"] == "upstream_error"
    _key_went_only_to_the_channel(mock_upstream)
    (row,) = gateway.wait_for_logs(1)
    assert row.status_code == 502


def test_channel_test_and_fetch_models_do_not_follow_redirects(
    gateway: LiveGateway, mock_upstream: MockServer
) -> None:
    channel = gateway.create_channel(**_redirected(mock_upstream))
    tested = gateway.http.post(
        f"/api/admin/channels/{channel['id']}/test", json={}, headers=gateway.admin
    )
    assert tested.status_code == 200
    assert tested.json()["ok"] is False
    assert "307" in tested.json()["error"]
    fetched = gateway.http.post(
        f"/api/admin/channels/{channel['id']}/fetch-models", headers=gateway.admin
    )
    assert fetched.status_code == 422
    assert "307" in fetched.text
    _key_went_only_to_the_channel(mock_upstream)
