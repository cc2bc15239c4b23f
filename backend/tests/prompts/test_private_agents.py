"""Private agents: users make their own when the site allows it; nobody else sees or uses them."""

from __future__ import annotations

from typing import Any

import httpx

from app.models import Agent
from tests.conftest import Harness

AGENT = {
    "name": "My reviewer",
    "avatar": "🧐",
    "system_prompt": "You review code tersely.",
    "greetings": ["Paste your code."],
    "suggested_questions": ["Review this function"],
    "default_model": "mock-gpt",
}


async def test_private_agents_when_the_site_allows_them(
    harness: Harness, client: httpx.AsyncClient, make_account: Any
) -> None:
    admin = await harness.admin_headers()
    alice, bob = await make_account(), await make_account()
    off = await client.post("/api/agents", json=AGENT, headers=alice.headers)
    assert off.status_code == 403
    assert off.json()["code"] == "user_agents_disabled"
    on = await client.put("/api/admin/settings", json={"user_agents_enabled": True}, headers=admin)
    assert on.status_code == 200, on.text
    made = await client.post("/api/agents", json=AGENT, headers=alice.headers)
    assert made.status_code == 201, made.text
    agent = made.json()
    assert (agent["owner_id"], agent["is_default"], agent["enabled"]) == (alice.id, False, True)
    mine = (await client.get("/api/agents", headers=alice.headers)).json()["items"]
    assert mine[-1]["name"] == "My reviewer"  # after the site's agents
    theirs = (await client.get("/api/agents", headers=bob.headers)).json()["items"]
    assert all(a["name"] != "My reviewer" for a in theirs)
    assert (await client.get(f"/api/agents/{agent['id']}", headers=bob.headers)).status_code == 404
    # Bob cannot start a chat with it; Alice can, and it sets the chat's model.
    chat = await client.post(
        "/api/conversations", json={"agent_id": agent["id"]}, headers=bob.headers
    )
    assert chat.status_code == 404
    chat = await client.post(
        "/api/conversations", json={"agent_id": agent["id"]}, headers=alice.headers
    )
    assert chat.status_code == 201, chat.text
    assert chat.json()["model"] == "mock-gpt"
    # The admin page lists the site's agents only; an admin route cannot edit Alice's.
    site = (await client.get("/api/admin/agents", headers=admin)).json()["items"]
    assert all(a["owner_id"] is None for a in site)
    assert (await client.patch(f"/api/admin/agents/{agent['id']}", json={"name": "x"},
                               headers=admin)).status_code == 404  # fmt: skip
    renamed = await client.patch(
        f"/api/agents/{agent['id']}", json={"name": "Reviewer"}, headers=alice.headers
    )
    assert renamed.json()["name"] == "Reviewer"
    assert (await client.patch(f"/api/agents/{agent['id']}", json={"name": "x"},
                               headers=bob.headers)).status_code == 404  # fmt: skip
    not_admin_fields = await client.post(
        "/api/agents", json={**AGENT, "is_default": True}, headers=alice.headers
    )
    assert not_admin_fields.status_code == 422
    assert (await client.delete(f"/api/agents/{agent['id']}",
                                headers=alice.headers)).status_code == 204  # fmt: skip
    # An account's private agents go with it.
    kept = await client.post("/api/agents", json=AGENT, headers=bob.headers)
    assert kept.status_code == 201
    assert (await client.delete(f"/api/admin/users/{bob.id}", headers=admin)).status_code == 204
    async with harness.app.state.ctx.sessionmaker() as db:
        assert await db.get(Agent, kept.json()["id"]) is None
