"""The blacklist over HTTP: CRUD, confirmation, 403 on every path, proxies, attempt records."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import func, select

from app.composition import AppContext
from app.models import BlockedAttempt
from tests.conftest import Harness, HarnessFactory

OWN_ADDRESS = "203.0.113.10"  # the harness client's address


def ctx_of(harness: Harness) -> AppContext:
    ctx: AppContext = harness.app.state.ctx
    return ctx


def client_from(harness: Harness, address: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=harness.app, client=(address, 40000)),
        base_url="http://testserver",
    )


async def create_rule(harness: Harness, **body: Any) -> httpx.Response:
    return await harness.client.post(
        "/api/admin/ip-rules", json=body, headers=await harness.admin_headers()
    )


async def test_a_listed_address_gets_403_on_every_path(harness: Harness) -> None:
    created = await create_rule(harness, cidr="198.51.100.0/24", reason="scraper")
    assert created.status_code == 201, created.text
    rule = created.json()
    assert rule["cidr"] == "198.51.100.0/24"
    assert rule["active"] is True
    assert rule["created_by"]
    async with client_from(harness, "198.51.100.23") as blocked:
        for method, path in [
            ("GET", "/"),
            ("GET", "/healthz"),
            ("GET", "/api/auth/me"),
            ("POST", "/api/auth/login"),
            ("GET", "/v1/models"),
            ("POST", "/v1/chat/completions"),
            ("GET", "/docs"),
        ]:
            response = await blocked.request(method, path)
            assert response.status_code == 403, (path, response.text)
        v1 = await blocked.get("/v1/models")
        assert v1.json()["error"]["code"] == "ip_blocked"
        api = await blocked.get("/api/auth/me")
        assert api.json() == {
            "detail": "Access from your network address is blocked.",
            "code": "ip_blocked",
        }
        assert "scraper" not in api.text  # the reason is for admins only
    async with client_from(harness, "198.51.101.1") as neighbour:
        assert (await neighbour.get("/healthz")).status_code == 200
    # Disabling the rule lets the address in again at once.
    path = f"/api/admin/ip-rules/{rule['id']}"
    admin = await harness.admin_headers()
    assert (await harness.client.patch(path, json={"enabled": False}, headers=admin)).is_success
    async with client_from(harness, "198.51.100.23") as unblocked:
        assert (await unblocked.get("/healthz")).status_code == 200
    assert (await harness.client.delete(path, headers=admin)).status_code == 204
    assert (await harness.client.get(path, headers=admin)).status_code == 404


async def test_invalid_and_dangerous_rules(harness: Harness) -> None:
    bad = await create_rule(harness, cidr="300.1.1.1/8")
    assert bad.status_code == 422
    host_bits = await create_rule(harness, cidr="10.0.0.1/8")
    assert host_bits.status_code == 422
    assert "10.0.0.0/8" in host_bits.json()["detail"][0]["msg"]
    for catch_all in ("0.0.0.0/0", "::/0"):
        refused = await create_rule(harness, cidr=catch_all)
        assert refused.status_code == 409
        assert refused.json()["code"] == "confirmation_required"
    own = await create_rule(harness, cidr="203.0.113.0/24")
    assert own.status_code == 409
    assert OWN_ADDRESS in own.json()["detail"]
    past = await create_rule(
        harness, cidr="192.0.2.1", expires_at=(datetime.now(UTC) - timedelta(hours=1)).isoformat()
    )
    assert past.status_code == 422
    listed = await harness.client.get("/api/admin/ip-rules", headers=await harness.admin_headers())
    assert listed.json()["total"] == 0  # none of that changed anything
    # Confirmed, the rule is created and the admin is locked out like anyone else.
    confirmed = await create_rule(harness, cidr="203.0.113.0/24", confirm=True)
    assert confirmed.status_code == 201
    assert (await harness.client.get("/healthz")).status_code == 403
    assert ctx_of(harness).guard.blocklist.match(OWN_ADDRESS) is not None


async def test_duplicates_are_a_conflict(harness: Harness) -> None:
    assert (await create_rule(harness, cidr="192.0.2.0/24")).status_code == 201
    again = await create_rule(harness, cidr="192.0.2.0/24")
    assert again.status_code == 409
    assert again.json()["code"] == "duplicate_rule"


async def test_expired_rules_stop_matching(harness: Harness) -> None:
    await harness.admin_headers()  # sign in first: on a busy machine that takes a while
    soon = datetime.now(UTC) + timedelta(seconds=2)
    created = await create_rule(harness, cidr="192.0.2.7", expires_at=soon.isoformat())
    assert created.status_code == 201, created.text
    async with client_from(harness, "192.0.2.7") as client:
        assert (await client.get("/healthz")).status_code == 403
        await asyncio.sleep((soon - datetime.now(UTC)).total_seconds() + 0.2)
        assert (await client.get("/healthz")).status_code == 200
    listed = await harness.client.get(
        "/api/admin/ip-rules?active=true", headers=await harness.admin_headers()
    )
    assert listed.json()["total"] == 0


async def test_forwarded_for_is_believed_only_from_trusted_proxies(
    harness_factory: HarnessFactory,
) -> None:
    # The harness client is the peer; untrusted here.
    direct = await harness_factory()
    assert (await create_rule(direct, cidr="198.51.100.7")).status_code == 201
    spoofed = await direct.client.get("/healthz", headers={"X-Forwarded-For": "198.51.100.7"})
    assert spoofed.status_code == 200  # a client cannot claim someone else's address
    # Behind a trusted proxy, the rightmost untrusted hop is the client.
    proxied = await harness_factory(server={"trusted_proxies": [OWN_ADDRESS, "10.0.0.0/8"]})
    ctx = ctx_of(proxied)
    await ctx.guard.blocklist.reload(ctx.sessionmaker)
    chains = {
        "198.51.100.7": 403,
        "1.2.3.4, 198.51.100.7": 403,
        "1.2.3.4, 198.51.100.7, 10.0.0.5": 403,  # an inner trusted proxy is skipped
        "198.51.100.7, 1.2.3.4": 200,  # the client wrote the left part itself
        "::ffff:198.51.100.7": 403,  # IPv4-mapped IPv6 is blocked by the IPv4 rule
    }
    for chain, expected in chains.items():
        response = await proxied.client.get("/healthz", headers={"X-Forwarded-For": chain})
        assert response.status_code == expected, chain
    async with client_from(direct, "::ffff:198.51.100.7") as mapped_peer:
        assert (await mapped_peer.get("/healthz")).status_code == 403


async def test_a_flood_leaves_a_bounded_number_of_attempt_rows(
    harness_factory: HarnessFactory,
) -> None:
    harness = await harness_factory(server={"trusted_proxies": [OWN_ADDRESS]})
    assert (await create_rule(harness, cidr="2001:db8::/32", reason="botnet")).status_code == 201
    assert (await create_rule(harness, cidr="192.0.2.66")).status_code == 201
    statuses: list[int] = []
    for index in range(10_000):
        address = f"2001:db8::{index:x}" if index % 10 else "192.0.2.66"
        response = await harness.client.get(
            f"/probe/{index}",
            headers={"X-Forwarded-For": address, "User-Agent": f"flood/{index % 3}"},
        )
        statuses.append(response.status_code)
    assert set(statuses) == {403}
    ctx = ctx_of(harness)
    await ctx.attempts.flush()
    async with ctx.sessionmaker() as db:
        rows = (await db.scalar(select(func.count()).select_from(BlockedAttempt))) or 0
        total = await db.scalar(select(func.sum(BlockedAttempt.count)))
        single = (
            await db.scalars(select(BlockedAttempt).where(BlockedAttempt.ip == "192.0.2.66"))
        ).one()
    assert total == 10_000  # every hit counted
    assert rows <= 1002  # 1,000 addresses of the range + the range row + the single address
    assert single.count == 1000
    assert single.last_path == "/probe/9990"
    assert single.last_user_agent.startswith("flood/")
    listed = await harness.client.get(
        "/api/admin/ip-rules/attempts?ip=192.0.2", headers=await harness.admin_headers()
    )
    assert listed.status_code == 200
    assert [item["count"] for item in listed.json()["items"]] == [1000]
