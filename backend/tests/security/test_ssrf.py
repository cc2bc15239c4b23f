"""Where a channel's traffic (and its key) may go: refused addresses, disguised addresses, redirects.

Basic refusals (schemes, metadata and link-local literals, private ranges, DNS names that resolve
to loopback) are in tests/gateway/test_channels_api.py; these are the ways around them.
"""

from __future__ import annotations

import errno
import socket
from typing import Any

import pytest
from sqlalchemy import update

from app.devtools.mock_upstream import MockServer
from app.gateway.upstream import create_client
from app.models import Channel
from tests.live import UPSTREAM_KEY, GatewayFactory, LiveGateway

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
        # Digits that only become an address once normalised (IDNA maps full-width to ASCII).
        ("http://１６９.２５４.１６９.２５４/latest", "ASCII"),
        ("http://169.254.169.２５４/latest", "ASCII"),
        ("http://١٦٩.٢٥٤.١٦٩.٢٥٤/latest", "ASCII"),  # Arabic-Indic
        ("http://१६९.२५४.१६९.२५४/latest", "ASCII"),  # Devanagari
        ("http://127.0.0.1%2e/v1", "host name"),
        ("http://[fe80::1%25eth0]/v1", "never allowed"),
        # IPv6 addresses that carry the metadata address.
        ("http://[::169.254.169.254]/latest", "never allowed"),  # IPv4-compatible
        ("http://[::ffff:0:169.254.169.254]/latest", "never allowed"),  # SIIT
        ("http://[64:ff9b::169.254.169.254]/latest", "never allowed"),  # NAT64
        ("http://[64:ff9b:1::a9fe:a9fe]/latest", "never allowed"),  # NAT64, local use
        ("http://[2002:a9fe:a9fe::1]/latest", "never allowed"),  # 6to4
        ("http://[2001:0:4136:e378:8000:63bf:5601:5601]/latest", "never allowed"),  # Teredo
        ("http://[2001:db8::200:5efe:169.254.169.254]/latest", "never allowed"),  # ISATAP
        ("http://[fd00:ec2::254]/latest", "never allowed"),
        ("http://100.100.100.200/latest", "never allowed"),
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


@pytest.mark.parametrize(
    "host",
    [
        "2852039166",
        "169.254.169.254",
        "[::ffff:169.254.169.254]",
        "１６９.２５４.１６９.２５４",
        "[64:ff9b::169.254.169.254]",
        "[2002:a9fe:a9fe::1]",
    ],
)
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
    # The caller gets a plain sentence; the call log says exactly why, for admins.
    message = response.json()["error"]["message"]
    assert "could not be reached" in message or "not reachable" in message, message
    (row,) = gateway.wait_for_logs(1)
    detail = str(row.error_message)
    assert "never allowed" in detail or "not a canonical IPv4 address" in detail, detail
    assert UPSTREAM_KEY not in response.text


# Loopback written every way the HTTP client would still connect to it. The mock upstream listens
# on 127.0.0.1, so a guard that reads any of these differently from the client lets the key through.
LOOPBACK_DISGUISES = [
    "127.0.0.1",
    "localhost",
    "LOCALHOST.",
    "１２７.０.０.１",
    "127.0.0.１",
    "[::ffff:127.0.0.1]",
    "[::ffff:7f00:1]",
    "[::127.0.0.1]",
    "[::ffff:0:127.0.0.1]",
    "[64:ff9b::127.0.0.1]",
    "[2002:7f00:1::1]",
]


def _resolves(host: str) -> bool:
    try:
        socket.getaddrinfo(host.strip("[]"), None)
    except (OSError, UnicodeError):
        return False
    return True


def _store_base_url(gateway: LiveGateway, channel_id: int, base_url: str) -> None:
    """Write a base URL straight into the row (as an older version, or a hand, could have)."""

    async def write() -> None:
        async with gateway.ctx.sessionmaker() as db:
            await db.execute(
                update(Channel).where(Channel.id == channel_id).values(base_url=base_url)
            )
            await db.commit()
        gateway.ctx.registry.invalidate()

    gateway.run(write)


@pytest.mark.parametrize("host", LOOPBACK_DISGUISES)
def test_private_upstreams_off_means_no_way_to_loopback(
    gateway_factory: GatewayFactory, mock_upstream: MockServer, host: str
) -> None:
    """With private upstreams off, no spelling of loopback gets a byte — or the key — to the mock:
    not on save, not from the channel test or fetch-models, not on a call."""
    gateway = gateway_factory(runtime={"allow_private_upstreams": False})
    base_url = f"http://{host}:{mock_upstream.port}/v1"
    created = gateway.http.post(
        "/api/admin/channels",
        json={"name": "x", "base_url": base_url, "api_key": UPSTREAM_KEY, "models": ["mock-gpt"]},
        headers=gateway.admin,
    )
    # Refused on save — unless the name does not resolve here and now (`localhost.` on a machine
    # without a local resolver): then every connection is checked after resolution instead.
    assert created.status_code == 422 or not _resolves(host), created.text
    fetched = gateway.http.post(
        "/api/admin/channels/fetch-models",
        json={"base_url": base_url, "api_key": UPSTREAM_KEY},
        headers=gateway.admin,
    )
    assert fetched.status_code == 422, fetched.text
    for row in gateway.channels_in_db():
        gateway.http.delete(f"/api/admin/channels/{row.id}", headers=gateway.admin)
    # A row that holds the address anyway (saved before the setting changed, or by hand).
    channel = gateway.create_channel(base_url="https://api.example.com/v1")
    _store_base_url(gateway, channel["id"], base_url)
    tested = gateway.http.post(
        f"/api/admin/channels/{channel['id']}/test", json={}, headers=gateway.admin
    )
    assert tested.status_code == 200, tested.text
    assert tested.json()["ok"] is False
    models = gateway.http.post(
        f"/api/admin/channels/{channel['id']}/fetch-models", headers=gateway.admin
    )
    assert models.status_code == 422, models.text
    for stream in (False, True):
        call = gateway.http.post(
            "/v1/chat/completions",
            json={"model": "mock-gpt", "messages": MESSAGES, "stream": stream},
            headers={"Authorization": f"Bearer {gateway.create_key()}"},
        )
        assert call.status_code == 502, call.text
        assert UPSTREAM_KEY not in call.text
    assert mock_upstream.state.total == 0
    assert list(mock_upstream.state.requests) == []


@pytest.mark.parametrize("host", ["[::ffff:127.0.0.1]", "localhost", "127.0.0.1"])
async def test_the_connection_itself_is_refused(mock_upstream: MockServer, host: str) -> None:
    """The HTTP client's own guard, below every pre-check: it judges the address of each
    connection it opens (after DNS, IP literals too) and refuses to open one to a refused address."""
    url = f"http://{host}:{mock_upstream.port}/v1/models"
    strict = create_client(lambda: False)
    try:
        with pytest.raises(OSError, match="private") as refused:
            await strict.request("GET", url, {})
        assert refused.value.errno == errno.EACCES
    finally:
        await strict.close()
    assert mock_upstream.state.total == 0
    lenient = create_client(lambda: True)
    try:
        response = await lenient.request("GET", url, {})
        assert response.status == 200  # the same URL, allowed: the refusal was the guard's
        assert b'"data"' in await response.read(1 << 20)
    finally:
        await lenient.close()


def test_a_base_url_is_stored_as_the_client_reads_it(
    gateway: LiveGateway, mock_upstream: MockServer
) -> None:
    """Upper case, full-width letters and a trailing slash are stored in the parser's form, and
    the channel works: what is checked and shown is what is connected to."""
    typed = f"http://ＬＯＣＡＬＨＯＳＴ:{mock_upstream.port}/V1/"
    channel = gateway.create_channel(base_url=typed)
    assert channel["base_url"] == f"http://localhost:{mock_upstream.port}/V1"
    idn = gateway.create_channel(name="idn", base_url="https://例子.测试/v1")
    assert idn["base_url"] == "https://xn--fsqu00a.xn--0zwm56d/v1"


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
