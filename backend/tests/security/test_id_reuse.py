"""No id that identifies an owner is ever given to a new row.

SQLite gave a new row the largest id + 1, so deleting the newest account and registering another
handed the new account the old one's id — and its call logs and statistics. Each owner kind is
deleted while it is the newest, then made again; the new one must get a new id.
"""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import AccountFactory, Harness
from tests.logs.rows import sample, write

MESSAGES = [{"role": "user", "content": "hi"}]


async def _created(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 201, response.text
    return dict(response.json())


async def test_a_deleted_accounts_id_and_its_logs_go_to_nobody(
    harness: Harness, make_account: AccountFactory
) -> None:
    admin = await harness.admin_headers()
    old = await make_account()
    # The old account's call logs stay after the account is gone.
    await write(harness.app, [{**row, "user_id": old.id} for row in sample(3, days=1)])
    deleted = await harness.client.delete(f"/api/admin/users/{old.id}", headers=admin)
    assert deleted.status_code == 204
    new = await make_account()
    assert new.id > old.id
    mine = await harness.client.get("/api/usage", headers=new.headers)
    assert mine.status_code == 200, mine.text
    assert mine.json()["items"] == []


async def test_deleted_keys_channels_agents_conversations_and_rules_keep_their_ids(
    harness: Harness, make_account: AccountFactory
) -> None:
    admin = await harness.admin_headers()
    user = await make_account()
    kinds: list[tuple[str, dict[str, Any], dict[str, str]]] = [
        ("/api/keys", {"name": "k"}, user.headers),
        (
            "/api/admin/channels",
            {
                "name": "c",
                "base_url": "https://api.example.com/v1",
                "api_key": "sk-x",
                "models": [],
            },
            admin,
        ),
        ("/api/admin/agents", {"name": "a", "system_prompt": "be brief"}, admin),
        ("/api/conversations", {"title": "t"}, user.headers),
        ("/api/admin/ip-rules", {"cidr": "198.51.100.0/24"}, admin),
    ]
    for path, body, headers in kinds:
        first = await _created(await harness.client.post(path, json=body, headers=headers))
        gone = await harness.client.delete(f"{path}/{first['id']}", headers=headers)
        assert gone.status_code == 204, (path, gone.text)
        second = await _created(await harness.client.post(path, json=body, headers=headers))
        assert second["id"] > first["id"], path
