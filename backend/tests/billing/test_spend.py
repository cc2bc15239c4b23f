"""Spend wherever numbers are shown: call logs (field, filter, costliest-first pages, totals,
CSV), the dashboard (periods, trend, models, top users and keys by spend), Prometheus."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from app.stats.metrics import Metrics
from tests.conftest import Harness
from tests.logs.rows import write

NOW = datetime.now(UTC)


def _row(index: int, cost: int | None, **fields: Any) -> dict[str, Any]:
    row = {
        "created_at": NOW - timedelta(minutes=index),
        "request_id": f"req-{index}",
        "source": "api",
        "user_id": 1 + index % 2,
        "api_key_id": None,
        "client_ip": "127.0.0.1",
        "requested_model": "m" if cost is not None else "free?",
        "upstream_model": "m",
        "channel_id": None,
        "channels_tried": [],
        "stream": False,
        "status_code": 200,
        "success": True,
        "end_reason": "done",
        "error_message": None,
        "prompt_tokens": 10,
        "completion_tokens": 10,
        "reasoning_tokens": 0,
        "cached_tokens": 0,
        "total_tokens": 20,
        "usage_source": "provider",
        "ttft_ms": 5,
        "duration_ms": 9,
        "cost": cost,
    }
    return {**row, **fields}


# Costs in nano-units: 0.5, 0.25 … and one call without a price.
COSTS = [500_000_000, 250_000_000, 2_000_000_000, 1_000, None, 750_000_000, 0]


async def _logs(harness: Harness) -> dict[str, str]:
    await write(harness.app, [_row(i, cost) for i, cost in enumerate(COSTS)])
    return await harness.admin_headers()


async def test_call_logs_show_filter_sort_and_total_cost(
    harness: Harness, client: httpx.AsyncClient
) -> None:
    admin = await _logs(harness)
    page = (await client.get("/api/admin/logs", headers=admin)).json()
    by_request = {item["request_id"]: item["cost"] for item in page["items"]}
    assert by_request["req-0"] == "0.5"
    assert by_request["req-3"] == "0.000001"
    assert by_request["req-4"] is None
    assert by_request["req-6"] == "0"

    costly = await client.get("/api/admin/logs", params={"min_cost": "0.5"}, headers=admin)
    assert sorted(i["request_id"] for i in costly.json()["items"]) == ["req-0", "req-2", "req-5"]
    unpriced = await client.get("/api/admin/logs", params={"unpriced": "true"}, headers=admin)
    assert [i["request_id"] for i in unpriced.json()["items"]] == ["req-4"]
    bad = await client.get("/api/admin/logs", params={"min_cost": "-1"}, headers=admin)
    assert bad.status_code == 422

    # Costliest first, two per page, the unpriced call last; pages neither skip nor repeat.
    seen, cursor = [], None
    while True:
        params: dict[str, Any] = {"sort": "cost", "limit": 2}
        if cursor:
            params["cursor"] = cursor
        response = (await client.get("/api/admin/logs", params=params, headers=admin)).json()
        seen += [item["request_id"] for item in response["items"]]
        cursor = response["next_cursor"]
        if cursor is None:
            break
    assert seen == ["req-2", "req-5", "req-0", "req-1", "req-3", "req-6", "req-4"]
    wrong = await client.get(
        "/api/admin/logs", params={"sort": "cost", "cursor": "bm9wZQ"}, headers=admin
    )
    assert wrong.status_code == 400

    totals = (await client.get("/api/admin/logs/totals", headers=admin)).json()
    assert (totals["cost"], totals["unpriced_calls"]) == ("3.500001", 1)
    mine = await client.get("/api/usage", params={"sort": "cost", "limit": 1}, headers=admin)
    assert [(i["request_id"], i["cost"]) for i in mine.json()["items"]] == [("req-2", "2")]

    exported = await client.get("/api/admin/logs/export", headers=admin)
    table = list(csv.reader(io.StringIO(exported.text.lstrip("\ufeff"))))
    header, body, total = table[0], table[1:-1], table[-1]
    at = header.index("cost")
    assert {row[header.index("request_id")]: row[at] for row in body}["req-0"] == "0.5"
    assert {row[header.index("request_id")]: row[at] for row in body}["req-4"] == ""
    assert total[at] == "3.500001"


async def test_the_dashboard_counts_spend(harness: Harness, client: httpx.AsyncClient) -> None:
    admin = await _logs(harness)
    overview = (await client.get("/api/admin/stats/overview", headers=admin)).json()
    today = overview["periods"]["today"]
    assert (today["cost"], today["unpriced_calls"]) == ("3.500001", 1)
    assert "cost" in overview["periods"]["week"]["change_percent"]
    trend = (await client.get("/api/admin/stats/trend", params={"days": 2}, headers=admin)).json()
    assert sum(float(day["cost"]) for day in trend["series"]) == 3.500001
    models = (await client.get("/api/admin/stats/models", headers=admin)).json()["items"]
    assert {m["model"]: m["cost_share"] for m in models} == {"m": 1.0, "free?": 0.0}
    top = await client.get("/api/admin/stats/top-users", params={"by": "cost"}, headers=admin)
    items = top.json()["items"]
    # user 1 (even rows): 0.5 + 2 + 0 + 0 (unpriced row 4); user 2 (odd): 0.25 + 0.000001 + 0.75
    assert [(item["id"], item["cost"]) for item in items] == [(1, "2.5"), (2, "1.000001")]


def test_prometheus_counts_spend_and_unpriced_calls() -> None:
    metrics = Metrics()
    metrics.observe_batch([_row(i, cost) for i, cost in enumerate(COSTS)])
    text = metrics.exposition().decode()
    lines = {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line and not line.startswith("#")
    }
    assert lines['acgw_cost_total{channel="",model="m",source="api"}'] == 3.500001
    assert lines['acgw_unpriced_calls_total{channel="",model="free?",source="api"}'] == 1
