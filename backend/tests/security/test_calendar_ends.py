"""Times at the ends of the calendar: every place a client gives a time.

`0001-01-01T00:00:00+14:00` lies in year 0 once in UTC, and a day after `9999-12-31` does not
exist: each was an `OverflowError` somewhere (a 500, or a CSV export cut off after its 200). Every
client-given time must be a 422 naming the field, and change nothing.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import AccountFactory, Harness

EXTREMES = [
    "0001-01-01T00:00:00+14:00",
    "0001-01-01T00:00:00Z",
    "1969-12-31T23:59:59Z",
    "9999-12-31T23:59:59-14:00",
    "9999-12-31T23:59:59Z",
    "9999-12-31T23:59:59.999999+00:00",
]


@pytest.mark.parametrize("when", EXTREMES)
@pytest.mark.parametrize("field", ["since", "until"])
@pytest.mark.parametrize(
    "path",
    [
        "/api/admin/logs",
        "/api/admin/logs/totals",
        "/api/admin/logs/export",
        "/api/usage",
        "/api/usage/totals",
        "/api/usage/export",
    ],
)
async def test_log_filters(harness: Harness, path: str, field: str, when: str) -> None:
    admin = await harness.admin_headers()
    response = await harness.client.get(path, params={field: when}, headers=admin)
    assert response.status_code == 422, (response.status_code, response.text[:200])
    assert field in response.text


async def _keys(harness: Harness, headers: dict[str, str]) -> list[dict[str, Any]]:
    return list((await harness.client.get("/api/keys", headers=headers)).json()["items"])


@pytest.mark.parametrize("when", [*EXTREMES, "9999-12-31T23:59:59"])
async def test_key_expiry(harness: Harness, make_account: AccountFactory, when: str) -> None:
    user = await make_account()
    created = await harness.client.post(
        "/api/keys", json={"name": "k", "expires_at": when}, headers=user.headers
    )
    assert created.status_code == 422, created.text
    assert await _keys(harness, user.headers) == []
    key = await harness.client.post("/api/keys", json={"name": "k"}, headers=user.headers)
    changed = await harness.client.patch(
        f"/api/keys/{key.json()['id']}", json={"expires_at": when}, headers=user.headers
    )
    assert changed.status_code == 422, changed.text
    assert (await _keys(harness, user.headers))[0]["expires_at"] is None


@pytest.mark.parametrize("when", EXTREMES)
async def test_ip_rule_expiry(harness: Harness, when: str) -> None:
    admin = await harness.admin_headers()
    created = await harness.client.post(
        "/api/admin/ip-rules",
        json={"cidr": "198.51.100.0/24", "expires_at": when},
        headers=admin,
    )
    assert created.status_code == 422, created.text
    listed = await harness.client.get("/api/admin/ip-rules", headers=admin)
    assert listed.json()["items"] == []


@pytest.mark.parametrize("when", EXTREMES)
@pytest.mark.parametrize("where", ["created_at", "exported_at", "message"])
async def test_conversation_import(
    harness: Harness, make_account: AccountFactory, when: str, where: str
) -> None:
    user = await make_account()
    message: dict[str, Any] = {"role": "user", "content": "hi"}
    body: dict[str, Any] = {"messages": [message]}
    if where == "message":
        message["created_at"] = when
    else:
        body[where] = when
    response = await harness.client.post(
        "/api/conversations/import", json=body, headers=user.headers
    )
    assert response.status_code == 422, response.text
    listed = await harness.client.get("/api/conversations", headers=user.headers)
    assert listed.json()["total"] == 0


async def test_ordinary_times_still_work(harness: Harness, make_account: AccountFactory) -> None:
    user = await make_account()
    key = await harness.client.post(
        "/api/keys",
        json={"name": "k", "expires_at": "2999-01-01T08:00:00+08:00"},
        headers=user.headers,
    )
    assert key.status_code == 201, key.text
    assert key.json()["expires_at"].startswith("2999-01-01T00:00:00")
    export = await harness.client.get(
        "/api/usage/export",
        params={"since": "2020-01-01T00:00:00+14:00", "until": "2998-12-31T00:00:00-14:00"},
        headers=user.headers,
    )
    assert export.status_code == 200, export.text
