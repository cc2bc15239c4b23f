"""The call-log API: filters, keyset pages, totals, CSV export, who may read what."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from typing import Any

import httpx
import pytest

from tests.conftest import AccountFactory, Harness
from tests.logs.rows import NOW, newest_first, sample, write

ADMIN_LOGS = "/api/admin/logs"


async def _all_pages(
    client: httpx.AsyncClient, url: str, headers: dict[str, str], **params: Any
) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {**params, "limit": 37, **({"cursor": cursor} if cursor else {})}
        response = await client.get(url, params=query, headers=headers)
        assert response.status_code == 200, response.text
        page = response.json()
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items


FILTERS: list[tuple[dict[str, Any], Any]] = [
    ({}, lambda r: True),
    ({"user_id": 1}, lambda r: r["user_id"] == 1),
    ({"model": "deepseek-chat"}, lambda r: r["requested_model"] == "deepseek-chat"),
    ({"channel_id": 3}, lambda r: r["channel_id"] == 3),
    ({"end_reason": "upstream_error"}, lambda r: r["end_reason"] == "upstream_error"),
    ({"success": False}, lambda r: not r["success"]),
    ({"stream": False, "source": "chat"}, lambda r: not r["stream"] and r["source"] == "chat"),
    ({"api_key_id": 2}, lambda r: r["api_key_id"] == 2),
    (
        {
            "since": (NOW - timedelta(days=1)).isoformat(),
            "until": (NOW - timedelta(hours=6)).isoformat(),
        },
        lambda r: NOW - timedelta(days=1) <= r["created_at"] < NOW - timedelta(hours=6),
    ),
    ({"request_id": "bench-1-17"}, lambda r: r["request_id"] == "bench-1-17"),
]


@pytest.mark.parametrize(("params", "keep"), FILTERS)
async def test_filters_select_exactly_the_matching_rows_newest_first(
    harness: Harness, client: httpx.AsyncClient, params: dict[str, Any], keep: Any
) -> None:
    rows = sample(400)
    await write(harness.app, rows)
    admin = await harness.admin_headers()
    items = await _all_pages(client, ADMIN_LOGS, admin, **params)
    expected = newest_first(r for r in rows if keep(r))
    assert [i["request_id"] for i in items] == expected

    totals = (await client.get(f"{ADMIN_LOGS}/totals", params=params, headers=admin)).json()
    chosen = [r for r in rows if keep(r)]
    assert totals["requests"] == len(chosen)
    assert totals["prompt_tokens"] == sum(r["prompt_tokens"] for r in chosen)
    assert totals["completion_tokens"] == sum(r["completion_tokens"] for r in chosen)
    errors = sum(r["end_reason"] in ("upstream_error", "timeout", "rejected") for r in chosen)
    assert totals["errors"] == errors


async def test_client_ip_filter_and_names_in_rows(
    harness: Harness, client: httpx.AsyncClient, make_account: AccountFactory
) -> None:
    alice = await make_account()
    rows = sample(50)
    rows[0] = {**rows[0], "user_id": alice.id, "client_ip": "198.51.100.7"}
    await write(harness.app, rows)
    admin = await harness.admin_headers()
    page = (
        await client.get(ADMIN_LOGS, params={"client_ip": "198.51.100.7"}, headers=admin)
    ).json()
    (item,) = page["items"]
    assert item["username"] == alice.username
    detail = await client.get(f"{ADMIN_LOGS}/{item['id']}", headers=admin)
    assert detail.json()["request_id"] == rows[0]["request_id"]


async def test_pages_have_no_gaps_or_duplicates_while_new_rows_arrive(
    harness: Harness, client: httpx.AsyncClient
) -> None:
    rows = sample(300)
    await write(harness.app, rows)
    admin = await harness.admin_headers()
    seen: list[str] = []
    cursor = None
    wave = 0
    while True:
        params = {"limit": 25, **({"cursor": cursor} if cursor else {})}
        page = (await client.get(ADMIN_LOGS, params=params, headers=admin)).json()
        seen += [i["request_id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
        wave += 1
        # New calls keep arriving while someone pages through (newer than anything listed).
        await write(
            harness.app,
            [
                {
                    **row,
                    "request_id": f"new-{wave}-{n}",
                    "created_at": NOW + timedelta(minutes=wave, seconds=n),
                }
                for n, row in enumerate(sample(5, seed=wave + 100))
            ],
        )
    assert len(seen) == len(set(seen)), "no row twice"
    assert seen == newest_first(rows), "every row that existed, in order, none of the new ones"


async def test_a_bad_cursor_or_filter_is_a_clear_error(
    harness: Harness, client: httpx.AsyncClient
) -> None:
    admin = await harness.admin_headers()
    for params in (
        {"cursor": "not-a-cursor"},
        {"since": "yesterday"},
        {"since": "2026-01-01T00:00:00"},
        {"limit": 0},
        {"end_reason": "nope"},
    ):
        response = await client.get(ADMIN_LOGS, params=params, headers=admin)
        assert response.status_code in (400, 422), (params, response.status_code)
        assert "detail" in response.json()


async def test_csv_export_equals_the_query_and_opens_in_excel(
    harness: Harness, client: httpx.AsyncClient
) -> None:
    rows = sample(1200)
    rows[5] = {
        **rows[5],
        "error_message": "上游错误：余额不足",
        "requested_model": '=HYPERLINK("x")',
    }
    await write(harness.app, rows)
    admin = await harness.admin_headers()
    params = {"since": (NOW - timedelta(days=2)).isoformat()}
    response = await client.get(f"{ADMIN_LOGS}/export", params=params, headers=admin)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    raw = response.content
    assert raw.startswith("\ufeff".encode())
    table = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    header, body, total = table[0], table[1:-1], table[-1]
    assert header[0] == "time"
    assert "request_id" in header

    chosen = [r for r in rows if r["created_at"] >= NOW - timedelta(days=2)]
    rid = header.index("request_id")
    assert [line[rid] for line in body] == newest_first(chosen)
    api = await _all_pages(client, ADMIN_LOGS, admin, **params)
    assert [line[rid] for line in body] == [i["request_id"] for i in api]
    assert body[0][0].endswith("+08:00"), "times in the site's time zone"

    assert total[0] == "TOTAL"
    assert total[1] == f"{len(chosen)} requests"
    assert int(total[header.index("prompt_tokens")]) == sum(r["prompt_tokens"] for r in chosen)
    text = raw.decode("utf-8-sig")
    if rows[5] in chosen:
        assert "上游错误：余额不足" in text
        assert "'=HYPERLINK" in text, "formulas are neutralised"


async def test_users_see_only_their_own_calls(
    harness: Harness, client: httpx.AsyncClient, make_account: AccountFactory
) -> None:
    alice, bob = await make_account(), await make_account()
    rows = sample(120)
    rows = [{**r, "user_id": alice.id if i % 3 else bob.id} for i, r in enumerate(rows)]
    await write(harness.app, rows)

    mine = await _all_pages(client, "/api/usage", alice.headers)
    assert [i["request_id"] for i in mine] == newest_first(
        r for r in rows if r["user_id"] == alice.id
    )
    assert "channel_id" not in mine[0]
    assert "username" not in mine[0]
    sneaky = await _all_pages(client, "/api/usage", alice.headers, user_id=bob.id)
    assert {i["request_id"] for i in sneaky} == {i["request_id"] for i in mine}

    bobs = (
        await client.get(
            ADMIN_LOGS, params={"user_id": bob.id}, headers=await harness.admin_headers()
        )
    ).json()
    other = bobs["items"][0]["id"]
    assert (await client.get(f"/api/usage/{other}", headers=alice.headers)).status_code == 404
    assert (await client.get(ADMIN_LOGS, headers=alice.headers)).status_code == 403
    assert (await client.get(f"{ADMIN_LOGS}/export", headers=alice.headers)).status_code == 403
    export = await client.get("/api/usage/export", headers=alice.headers)
    lines = list(csv.reader(io.StringIO(export.content.decode("utf-8-sig"))))
    assert len(lines) - 2 == len(mine)
    totals = (await client.get("/api/usage/totals", headers=alice.headers)).json()
    assert totals["requests"] == len(mine)
