"""Saved prompts: a user's own (private to them), published ones (admins only, seen by all)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import Harness

PROMPTS = "/api/prompts"


async def test_own_and_published_prompts(
    harness: Harness, client: httpx.AsyncClient, make_account: Any
) -> None:
    admin = await harness.admin_headers()
    alice, bob = await make_account(), await make_account()
    mine = await client.post(
        PROMPTS,
        json={"title": "Translate", "body": "把下面的文字翻译成英文：\n"},
        headers=alice.headers,
    )
    assert mine.status_code == 201, mine.text
    assert (mine.json()["mine"], mine.json()["shared"]) == (True, False)
    refused = await client.post(
        PROMPTS, json={"title": "All", "body": "x", "shared": True}, headers=alice.headers
    )
    assert refused.status_code == 403
    published = await client.post(
        PROMPTS, json={"title": "Code review", "body": "Review:", "shared": True}, headers=admin
    )
    assert published.status_code == 201
    seen = (await client.get(PROMPTS, headers=bob.headers)).json()
    assert [(p["title"], p["mine"]) for p in seen] == [("Code review", False)]  # not Alice's
    seen = (await client.get(PROMPTS, headers=alice.headers)).json()
    assert [p["title"] for p in seen] == ["Code review", "Translate"]
    # Bob cannot see, change or delete Alice's; nobody but admins changes a published one.
    alices = mine.json()["id"]
    assert (await client.patch(f"{PROMPTS}/{alices}", json={"title": "x"},
                               headers=bob.headers)).status_code == 404  # fmt: skip
    assert (await client.delete(f"{PROMPTS}/{alices}", headers=bob.headers)).status_code == 404
    shared_id = published.json()["id"]
    assert (await client.patch(f"{PROMPTS}/{shared_id}", json={"body": "y"},
                               headers=bob.headers)).status_code == 403  # fmt: skip
    publish = await client.patch(
        f"{PROMPTS}/{alices}", json={"shared": True}, headers=alice.headers
    )
    assert publish.status_code == 403
    edited = await client.patch(f"{PROMPTS}/{alices}", json={"title": "Translate to English"},
                                headers=alice.headers)  # fmt: skip
    assert edited.json()["title"] == "Translate to English"
    assert (await client.delete(f"{PROMPTS}/{shared_id}", headers=admin)).status_code == 204
    assert (await client.delete(f"{PROMPTS}/{alices}", headers=alice.headers)).status_code == 204
    assert (await client.get(PROMPTS, headers=alice.headers)).json() == []


@pytest.mark.parametrize(
    "body",
    [
        {"title": "", "body": "x"},
        {"title": "t", "body": ""},
        {"title": "t" * 101, "body": "x"},
        {"title": "t", "body": "x" * 20_001},
        {"title": "t", "body": "x", "owner": 1},
    ],
)
async def test_bad_prompts_are_422(
    harness: Harness, client: httpx.AsyncClient, make_account: Any, body: dict[str, Any]
) -> None:
    user = await make_account()
    assert (await client.post(PROMPTS, json=body, headers=user.headers)).status_code == 422
