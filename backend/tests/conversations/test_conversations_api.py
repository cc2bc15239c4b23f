"""Conversations over the API (in process): create, list, search, edit, export, import, admin."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from app.models import Message
from tests.conftest import Account, AccountFactory, Harness

API = "/api/conversations"


async def _create(client: httpx.AsyncClient, account: Account, **body: Any) -> dict[str, Any]:
    response = await client.post(API, json=body, headers=account.headers)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def _add_messages(harness: Harness, conversation_id: int, *pairs: tuple[str, str]) -> None:
    """Write messages as finished replies would (the reply path itself is tested live)."""
    ctx = harness.app.state.ctx
    async with ctx.sessionmaker() as db:
        for role, content in pairs:
            db.add(Message(conversation_id=conversation_id, role=role, content=content, model="m"))
        await db.commit()


async def test_a_new_chat_copies_the_default_agents_context(
    client: httpx.AsyncClient, make_account: AccountFactory
) -> None:
    alice = await make_account()
    conversation = await _create(client, alice)
    assert conversation["agent_id"] is not None
    assert conversation["system_prompt"]
    assert conversation["title"] == ""
    assert conversation["title_source"] == "auto"
    detail = (await client.get(f"{API}/{conversation['id']}", headers=alice.headers)).json()
    assert detail["agent"]["greetings"], "the default agent greets"
    assert detail["messages"] == []
    assert detail["running_reply"] is None


async def test_list_is_pinned_first_then_newest_and_searches_titles_and_messages(
    harness: Harness, client: httpx.AsyncClient, make_account: AccountFactory
) -> None:
    alice = await make_account()
    first = await _create(client, alice, title="Kyoto trip")
    second = await _create(client, alice, title="Tax return")
    third = await _create(client, alice, title="Birthday")
    await _add_messages(harness, second["id"], ("user", "How is 增值税 computed?"))
    await client.patch(f"{API}/{first['id']}", json={"pinned": True}, headers=alice.headers)
    await client.patch(f"{API}/{third['id']}", json={"archived": True}, headers=alice.headers)

    listed = (await client.get(API, headers=alice.headers)).json()
    assert [c["id"] for c in listed["items"]] == [first["id"], second["id"]]
    assert listed["total"] == 2
    archived = (await client.get(API, params={"archived": True}, headers=alice.headers)).json()
    assert [c["id"] for c in archived["items"]] == [third["id"]]

    by_title = (await client.get(API, params={"q": "kyoto"}, headers=alice.headers)).json()
    assert [c["id"] for c in by_title["items"]] == [first["id"]]
    by_content = (await client.get(API, params={"q": "增值税"}, headers=alice.headers)).json()
    assert [c["id"] for c in by_content["items"]] == [second["id"]]
    literal = (await client.get(API, params={"q": "%"}, headers=alice.headers)).json()
    assert literal["items"] == []

    paged = (
        await client.get(API, params={"page": 2, "page_size": 1}, headers=alice.headers)
    ).json()
    assert [c["id"] for c in paged["items"]] == [second["id"]]


async def test_rename_pin_archive_and_edit_the_context(
    client: httpx.AsyncClient, make_account: AccountFactory
) -> None:
    alice = await make_account()
    conversation = await _create(client, alice)
    path = f"{API}/{conversation['id']}"
    renamed = (await client.patch(path, json={"title": "Notes"}, headers=alice.headers)).json()
    assert (renamed["title"], renamed["title_source"]) == ("Notes", "user")

    context = {
        "system_prompt": "Answer in haiku.",
        "preset_messages": [{"role": "user", "content": "Example?"}],
        "model": "some-model",
        "params": {"temperature": 1.2, "max_tokens": 64},
    }
    response = await client.put(f"{path}/context", json=context, headers=alice.headers)
    assert response.status_code == 200, response.text
    updated = response.json()
    assert updated["system_prompt"] == "Answer in haiku."
    assert updated["preset_messages"] == [{"role": "user", "content": "Example?"}]
    assert updated["model"] == "some-model"
    assert updated["params"]["temperature"] == 1.2
    assert updated["params"]["max_tokens"] == 64

    cleared = (
        await client.put(f"{path}/context", json={"model": None}, headers=alice.headers)
    ).json()
    assert cleared["model"] is None
    assert cleared["system_prompt"] == "Answer in haiku."


@pytest.mark.parametrize(
    "body",
    [
        {"params": {"temperature": 3}},
        {"params": {"max_tokens": 0}},
        {"params": {"api_base": "http://evil"}},
        {"preset_messages": [{"role": "tool", "content": "x"}]},
        {"system_prompt": 5},
    ],
)
async def test_a_bad_context_is_refused_and_changes_nothing(
    client: httpx.AsyncClient, make_account: AccountFactory, body: dict[str, Any]
) -> None:
    alice = await make_account()
    conversation = await _create(client, alice)
    path = f"{API}/{conversation['id']}"
    response = await client.put(f"{path}/context", json=body, headers=alice.headers)
    assert response.status_code == 422
    after = (await client.get(path, headers=alice.headers)).json()
    assert after["params"] == conversation["params"]
    assert after["system_prompt"] == conversation["system_prompt"]


async def test_messages_are_paged_from_the_newest(
    harness: Harness, client: httpx.AsyncClient, make_account: AccountFactory
) -> None:
    alice = await make_account()
    conversation = await _create(client, alice)
    await _add_messages(
        harness,
        conversation["id"],
        *[("user" if i % 2 == 0 else "assistant", f"m{i}") for i in range(7)],
    )
    path = f"{API}/{conversation['id']}/messages"
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 3, **({"before": cursor} if cursor else {})}
        page = (await client.get(path, params=params, headers=alice.headers)).json()
        seen = [m["content"] for m in page["items"]] + seen
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"m{i}" for i in range(7)]


async def test_export_as_markdown_and_json_and_import_it_back(
    harness: Harness, client: httpx.AsyncClient, make_account: AccountFactory
) -> None:
    alice = await make_account()
    conversation = await _create(client, alice, title="导出测试")
    await _add_messages(
        harness, conversation["id"], ("user", "你好"), ("assistant", "**Hi** there")
    )
    path = f"{API}/{conversation['id']}/export"

    markdown = await client.get(path, headers=alice.headers)
    assert markdown.status_code == 200
    assert markdown.headers["content-type"].startswith("text/markdown")
    assert "filename*=UTF-8''" in markdown.headers["content-disposition"]
    text = markdown.text
    assert text.startswith("# 导出测试")
    assert "## User\n\n你好" in text
    assert "**Hi** there" in text

    exported = await client.get(path, params={"format": "json"}, headers=alice.headers)
    data = exported.json()
    assert data["format"] == "ai-chat-gateway.conversation"
    assert [(m["role"], m["content"]) for m in data["messages"]] == [
        ("user", "你好"),
        ("assistant", "**Hi** there"),
    ]

    imported = await client.post(f"{API}/import", json=data, headers=alice.headers)
    assert imported.status_code == 201, imported.text
    copy = (await client.get(f"{API}/{imported.json()['id']}", headers=alice.headers)).json()
    assert copy["title"] == "导出测试"
    assert copy["message_count"] == 2
    assert [(m["role"], m["content"]) for m in copy["messages"]] == [
        ("user", "你好"),
        ("assistant", "**Hi** there"),
    ]
    again = await client.get(
        f"{API}/{copy['id']}/export", params={"format": "json"}, headers=alice.headers
    )
    assert again.json()["messages"] == data["messages"]


@pytest.mark.parametrize(
    "body",
    [
        {"format": "something-else", "messages": []},
        {"messages": [{"role": "system", "content": "x"}]},
        {"messages": [{"role": "user", "content": "x", "created_at": "2026-01-01T00:00:00"}]},
        {"messages": "nope"},
        {},
    ],
)
async def test_a_bad_import_is_refused_and_creates_nothing(
    client: httpx.AsyncClient, make_account: AccountFactory, body: dict[str, Any]
) -> None:
    alice = await make_account()
    response = await client.post(f"{API}/import", json=body, headers=alice.headers)
    assert response.status_code == 422
    assert (await client.get(API, headers=alice.headers)).json()["total"] == 0


async def test_someone_elses_conversation_is_not_found_for_every_verb(
    harness: Harness, client: httpx.AsyncClient, make_account: AccountFactory
) -> None:
    alice, bob = await make_account(), await make_account()
    conversation = await _create(client, alice, title="private")
    await _add_messages(harness, conversation["id"], ("user", "secret"))
    message_id = (await client.get(f"{API}/{conversation['id']}", headers=alice.headers)).json()[
        "messages"
    ][0]["id"]
    base = f"{API}/{conversation['id']}"
    calls = [
        ("GET", base, None),
        ("PATCH", base, {"title": "mine"}),
        ("DELETE", base, None),
        ("PUT", f"{base}/context", {"system_prompt": "x"}),
        ("GET", f"{base}/messages", None),
        ("POST", f"{base}/messages", {"content": "hi"}),
        ("POST", f"{base}/messages/{message_id}/edit", {"content": "hi"}),
        ("POST", f"{base}/regenerate", {}),
        ("GET", f"{base}/stream", None),
        ("POST", f"{base}/stop", None),
        ("GET", f"{base}/export", None),
    ]
    for method, url, body in calls:
        response = await client.request(method, url, json=body, headers=bob.headers)
        assert response.status_code == 404, (method, url, response.status_code)
        assert "secret" not in response.text
        assert "private" not in response.text
    listed = (await client.get(API, params={"q": "secret"}, headers=bob.headers)).json()
    assert listed["total"] == 0
    still = (await client.get(base, headers=alice.headers)).json()
    assert still["title"] == "private"
    assert len(still["messages"]) == 1


async def test_signed_out_callers_get_401(client: httpx.AsyncClient) -> None:
    for method, url in [
        ("GET", API),
        ("POST", API),
        ("GET", f"{API}/1"),
        ("POST", f"{API}/1/messages"),
    ]:
        assert (await client.request(method, url, json={})).status_code == 401


async def test_sending_needs_a_model_someone_serves(
    client: httpx.AsyncClient, make_account: AccountFactory
) -> None:
    alice = await make_account()
    conversation = await _create(client, alice)
    path = f"{API}/{conversation['id']}/messages"
    response = await client.post(path, json={"content": "hi"}, headers=alice.headers)
    assert response.status_code == 422
    assert response.json()["code"] == "no_models"
    for body in (
        {"content": ""},
        {"content": "   "},
        {"content": "x" * 200_001},
        {},
        {"content": 3},
    ):
        assert (await client.post(path, json=body, headers=alice.headers)).status_code == 422
    detail = (await client.get(f"{API}/{conversation['id']}", headers=alice.headers)).json()
    assert detail["messages"] == []
    assert detail["message_count"] == 0


async def test_admins_see_every_conversation_with_its_owner_and_can_delete_it(
    harness: Harness, client: httpx.AsyncClient, make_account: AccountFactory
) -> None:
    alice = await make_account()
    conversation = await _create(client, alice, title="alice's")
    await _add_messages(harness, conversation["id"], ("user", "q"), ("assistant", "a"))
    admin = await harness.admin_headers()
    listed = (await client.get("/api/admin/conversations", headers=admin)).json()
    (row,) = listed["items"]
    assert (row["username"], row["title"], row["user_id"]) == (alice.username, "alice's", alice.id)
    read = (
        await client.get(f"/api/admin/conversations/{conversation['id']}", headers=admin)
    ).json()
    assert [m["content"] for m in read["messages"]] == ["q", "a"]
    assert (await client.get("/api/admin/conversations", headers=alice.headers)).status_code == 403
    deleted = await client.delete(f"/api/admin/conversations/{conversation['id']}", headers=admin)
    assert deleted.status_code == 204
    assert (
        await client.get(f"{API}/{conversation['id']}", headers=alice.headers)
    ).status_code == 404
    ctx = harness.app.state.ctx
    async with ctx.sessionmaker() as db:
        assert (await db.scalars(select(Message))).all() == []


async def test_deleting_a_conversation_removes_its_messages(
    harness: Harness, client: httpx.AsyncClient, make_account: AccountFactory
) -> None:
    alice = await make_account()
    conversation = await _create(client, alice)
    await _add_messages(harness, conversation["id"], ("user", "q"))
    response = await client.delete(f"{API}/{conversation['id']}", headers=alice.headers)
    assert response.status_code == 204
    ctx = harness.app.state.ctx
    async with ctx.sessionmaker() as db:
        assert (await db.scalars(select(Message))).all() == []
    assert json.loads((await client.get(API, headers=alice.headers)).text)["total"] == 0
