"""Agents: seeded default, admin management, what users see, validation."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import AccountFactory, Harness

ADMIN_API = "/api/admin/agents"


def _agent(**fields: Any) -> dict[str, Any]:
    return {
        "name": "Coder",
        "avatar": "🧑‍💻",
        "system_prompt": "You write Python.",
        "greetings": ["Ready to code."],
        "suggested_questions": ["Sort a list", "Read a CSV"],
        "default_model": "mock-gpt",
        "params": {"temperature": 0.1},
        **fields,
    }


async def test_one_default_agent_exists_on_a_new_installation(
    client: httpx.AsyncClient, make_account: AccountFactory
) -> None:
    alice = await make_account()
    listed = (await client.get("/api/agents", headers=alice.headers)).json()
    (agent,) = listed["items"]
    assert agent["is_default"] is True
    assert agent["greetings"]
    assert 2 <= len(agent["suggested_questions"]) <= 4


async def test_the_default_agent_is_not_created_again_after_it_is_deleted(
    harness_factory: Any,
) -> None:
    first = await harness_factory()
    admin = await first.admin_headers()
    (agent,) = (await first.client.get(ADMIN_API, headers=admin)).json()["items"]
    assert (
        await first.client.delete(f"{ADMIN_API}/{agent['id']}", headers=admin)
    ).status_code == 204
    second = await harness_factory()  # a restart on the same database
    assert (await second.client.get(ADMIN_API, headers=await second.admin_headers())).json()[
        "items"
    ] == []


async def test_admins_manage_agents_and_users_see_the_enabled_ones_in_order(
    harness: Harness, client: httpx.AsyncClient, make_account: AccountFactory
) -> None:
    admin = await harness.admin_headers()
    alice = await make_account()
    late = (
        await client.post(ADMIN_API, json=_agent(name="Late", sort_order=10), headers=admin)
    ).json()
    early = (
        await client.post(ADMIN_API, json=_agent(name="Early", sort_order=-5), headers=admin)
    ).json()
    hidden = (
        await client.post(ADMIN_API, json=_agent(name="Hidden", enabled=False), headers=admin)
    ).json()

    names = [
        a["name"] for a in (await client.get("/api/agents", headers=alice.headers)).json()["items"]
    ]
    assert names[0] == "Early"
    assert names[-1] == "Late"
    assert "Hidden" not in names
    assert (
        await client.get(f"/api/agents/{hidden['id']}", headers=alice.headers)
    ).status_code == 404
    assert (
        await client.get(f"/api/agents/{early['id']}", headers=alice.headers)
    ).status_code == 200

    made_default = await client.patch(
        f"{ADMIN_API}/{late['id']}", json={"is_default": True}, headers=admin
    )
    assert made_default.json()["is_default"] is True
    defaults = [
        a for a in (await client.get(ADMIN_API, headers=admin)).json()["items"] if a["is_default"]
    ]
    assert [a["id"] for a in defaults] == [late["id"]], "only one default"

    # A new chat without an agent starts from the default one, copying its context.
    conversation = (await client.post("/api/conversations", json={}, headers=alice.headers)).json()
    assert conversation["agent_id"] == late["id"]
    assert conversation["system_prompt"] == "You write Python."
    assert conversation["model"] == "mock-gpt"
    assert conversation["params"]["temperature"] == 0.1

    # Editing the agent later leaves that chat's context alone.
    await client.patch(
        f"{ADMIN_API}/{late['id']}", json={"system_prompt": "Changed"}, headers=admin
    )
    again = (
        await client.get(f"/api/conversations/{conversation['id']}", headers=alice.headers)
    ).json()
    assert again["system_prompt"] == "You write Python."

    # Deleting it keeps the chat (without its agent).
    assert (await client.delete(f"{ADMIN_API}/{late['id']}", headers=admin)).status_code == 204
    kept = (
        await client.get(f"/api/conversations/{conversation['id']}", headers=alice.headers)
    ).json()
    assert kept["agent_id"] is None
    assert kept["agent"] is None


async def test_a_chat_cannot_start_from_a_disabled_or_missing_agent(
    harness: Harness, client: httpx.AsyncClient, make_account: AccountFactory
) -> None:
    admin = await harness.admin_headers()
    alice = await make_account()
    hidden = (await client.post(ADMIN_API, json=_agent(enabled=False), headers=admin)).json()
    for agent_id in (hidden["id"], 999_999):
        response = await client.post(
            "/api/conversations", json={"agent_id": agent_id}, headers=alice.headers
        )
        assert response.status_code == 404


@pytest.mark.parametrize(
    "fields",
    [
        {"name": ""},
        {"suggested_questions": ["1", "2", "3", "4", "5"]},
        {"preset_messages": [{"role": "tool", "content": "x"}]},
        {"params": {"top_p": 2}},
        {"params": {"base_url": "http://elsewhere"}},
        {"unknown_field": 1},
    ],
)
async def test_invalid_agents_are_refused(
    harness: Harness, client: httpx.AsyncClient, fields: dict[str, Any]
) -> None:
    admin = await harness.admin_headers()
    before = (await client.get(ADMIN_API, headers=admin)).json()["total"]
    response = await client.post(ADMIN_API, json=_agent(**fields), headers=admin)
    assert response.status_code == 422
    assert (await client.get(ADMIN_API, headers=admin)).json()["total"] == before


async def test_agent_administration_is_for_admins(
    client: httpx.AsyncClient, make_account: AccountFactory
) -> None:
    alice = await make_account()
    assert (await client.get(ADMIN_API, headers=alice.headers)).status_code == 403
    assert (await client.post(ADMIN_API, json=_agent(), headers=alice.headers)).status_code == 403
    assert (await client.get("/api/agents")).status_code == 401
