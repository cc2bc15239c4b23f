"""Dashboard statistics from the rollups equal what the raw rows say, day by day, in the site's
time zone; rebuilding gives the same; a new time zone rebuilds."""

from __future__ import annotations

import ipaddress
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import select

from app.ipfilter.cache import BlockRule
from app.models import UsageDaily
from app.stats import rollup
from tests.conftest import AccountFactory, Harness, HarnessFactory
from tests.logs.rows import sample, write

SHANGHAI = ZoneInfo("Asia/Shanghai")
ERROR_ENDS = {"upstream_error", "timeout", "rejected"}
STATS = "/api/admin/stats"


def _local_day(row: dict[str, Any], tz: ZoneInfo = SHANGHAI) -> date:
    return row["created_at"].astimezone(tz).date()


async def _rollup_rows(harness: Harness) -> set[tuple[Any, ...]]:
    async with harness.app.state.ctx.sessionmaker() as db:
        rows = (await db.scalars(select(UsageDaily))).all()
    return {
        (
            r.day,
            r.dim,
            r.value,
            r.calls,
            r.errors,
            r.prompt_tokens,
            r.completion_tokens,
            r.total_tokens,
        )
        for r in rows
    }


async def test_dashboard_numbers_equal_the_raw_rows_after_a_mixed_workload(
    harness: Harness, client: httpx.AsyncClient
) -> None:
    rows = sample(3000, days=40)
    for start in range(0, len(rows), 333):  # many batches, as a live writer would
        await write(harness.app, rows[start : start + 333])
    admin = await harness.admin_headers()
    today = datetime.now(SHANGHAI).date()

    trend = (await client.get(f"{STATS}/trend", params={"days": 30}, headers=admin)).json()
    assert trend["timezone"] == "Asia/Shanghai"
    assert len(trend["series"]) == 30
    by_day: dict[date, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_day[_local_day(row)].append(row)
    for point in trend["series"]:
        day_rows = by_day.get(date.fromisoformat(point["day"]), [])
        assert point["calls"] == len(day_rows)
        assert point["total_tokens"] == sum(r["total_tokens"] for r in day_rows)
        assert point["errors"] == sum(r["end_reason"] in ERROR_ENDS for r in day_rows)
        ttfts = [r["ttft_ms"] for r in day_rows if r["ttft_ms"] is not None]
        assert point["avg_ttft_ms"] == (round(sum(ttfts) / len(ttfts)) if ttfts else None)

    overview = (await client.get(f"{STATS}/overview", headers=admin)).json()
    week = overview["periods"]["week"]
    recent = [r for r in rows if today - timedelta(days=6) <= _local_day(r) <= today]
    before = [
        r for r in rows if today - timedelta(days=13) <= _local_day(r) <= today - timedelta(days=7)
    ]
    assert week["calls"] == len(recent)
    assert week["previous"]["calls"] == len(before)
    assert week["change_percent"]["calls"] == round(
        (len(recent) - len(before)) / len(before) * 100, 1
    )
    assert overview["periods"]["today"]["calls"] == len(by_day.get(today, []))

    month = [r for r in rows if today - timedelta(days=29) <= _local_day(r)]
    shares = (await client.get(f"{STATS}/models", params={"days": 30}, headers=admin)).json()
    counted = Counter(r["requested_model"] for r in month)
    assert {i["model"]: i["calls"] for i in shares["items"]} == dict(counted)
    assert abs(sum(i["call_share"] for i in shares["items"]) - 1) < 0.01

    top = (
        await client.get(f"{STATS}/top-users", params={"days": 30, "limit": 5}, headers=admin)
    ).json()
    users = Counter(r["user_id"] for r in month)
    assert [i["calls"] for i in top["items"]] == [count for _, count in users.most_common(5)]

    keys = (
        await client.get(f"{STATS}/top-keys", params={"days": 30, "limit": 3}, headers=admin)
    ).json()
    key_counts = Counter(r["api_key_id"] for r in month if r["api_key_id"] is not None)
    assert [i["calls"] for i in keys["items"]] == [c for _, c in key_counts.most_common(3)]

    active = (await client.get(f"{STATS}/active-users", headers=admin)).json()
    assert active["last_7_days"] == len({r["user_id"] for r in recent})
    assert active["last_30_days"] == len({r["user_id"] for r in month})

    health = (await client.get(f"{STATS}/channels", params={"days": 7}, headers=admin)).json()
    for item in health["items"]:
        mine = [r for r in recent if r["channel_id"] == item["channel_id"]]
        assert item["calls"] == len(mine)
        failed = sum(r["end_reason"] in ERROR_ENDS for r in mine)
        assert item["success_rate"] == round((len(mine) - failed) / len(mine), 4)
        durations = sorted(r["duration_ms"] for r in mine if r["end_reason"] == "done")
        true_p50 = durations[(len(durations) - 1) // 2]
        assert item["p50_ms"] >= true_p50, "bucket upper bound: never below the true value"
        assert item["p50_ms"] <= max(true_p50 * 2, 50)
        assert item["p95_ms"] >= item["p50_ms"]


async def test_a_rebuild_from_the_raw_rows_gives_the_same_rollups(harness: Harness) -> None:
    await write(harness.app, sample(1500, days=10))
    before = await _rollup_rows(harness)
    read = await rollup.rebuild(harness.app.state.ctx.engine, SHANGHAI)
    assert read == 1500
    assert await _rollup_rows(harness) == before


async def test_calls_either_side_of_local_midnight_land_on_different_days(
    harness: Harness, client: httpx.AsyncClient
) -> None:
    yesterday = datetime.now(SHANGHAI).date() - timedelta(days=1)
    midnight = datetime(
        yesterday.year, yesterday.month, yesterday.day, tzinfo=SHANGHAI
    ) + timedelta(days=1)
    template = sample(1)[0]
    await write(
        harness.app,
        [
            {
                **template,
                "request_id": "late",
                "created_at": (midnight - timedelta(minutes=1)).astimezone(UTC),
            },
            {
                **template,
                "request_id": "early",
                "created_at": (midnight + timedelta(minutes=1)).astimezone(UTC),
            },
        ],
    )
    admin = await harness.admin_headers()
    series = (await client.get(f"{STATS}/trend", params={"days": 2}, headers=admin)).json()[
        "series"
    ]
    assert [(p["day"], p["calls"]) for p in series] == [
        (yesterday.isoformat(), 1),
        ((yesterday + timedelta(days=1)).isoformat(), 1),
    ]
    # 23:59 and 00:01 in Shanghai are 15:59 and 16:01 UTC on one UTC day.
    assert (midnight - timedelta(minutes=1)).astimezone(UTC).date() == (
        midnight + timedelta(minutes=1)
    ).astimezone(UTC).date()


async def test_another_site_time_zone_rebuilds_the_rollups_at_start(
    harness_factory: HarnessFactory,
) -> None:
    first = await harness_factory()
    rows = sample(800, days=5)
    await write(first.app, rows)
    second = await harness_factory(server={"site_timezone": "America/New_York"})
    admin = await second.admin_headers()
    trend = (await second.client.get(f"{STATS}/trend", params={"days": 7}, headers=admin)).json()
    assert trend["timezone"] == "America/New_York"
    expected = Counter(_local_day(r, ZoneInfo("America/New_York")).isoformat() for r in rows)
    assert {p["day"]: p["calls"] for p in trend["series"] if p["calls"]} == dict(expected)


async def test_my_daily_usage_and_who_may_see_statistics(
    harness: Harness, client: httpx.AsyncClient, make_account: AccountFactory
) -> None:
    alice = await make_account()
    rows = [{**r, "user_id": alice.id if i % 2 else 999} for i, r in enumerate(sample(200, days=3))]
    await write(harness.app, rows)
    mine = (await client.get("/api/usage/daily", params={"days": 7}, headers=alice.headers)).json()
    assert sum(p["calls"] for p in mine["series"]) == sum(
        1 for r in rows if r["user_id"] == alice.id
    )
    for path in (
        "overview",
        "trend",
        "models",
        "active-users",
        "top-users",
        "top-keys",
        "channels",
        "blocked",
    ):
        assert (await client.get(f"{STATS}/{path}", headers=alice.headers)).status_code == 403
        assert (await client.get(f"{STATS}/{path}")).status_code == 401


async def test_blocked_addresses_are_listed_by_count(
    harness: Harness, client: httpx.AsyncClient
) -> None:
    admin = await harness.admin_headers()
    rule = await client.post(
        "/api/admin/ip-rules", json={"cidr": "198.51.100.0/24", "reason": "abuse"}, headers=admin
    )
    assert rule.status_code == 201, rule.text
    ctx = harness.app.state.ctx
    block = BlockRule(rule.json()["id"], ipaddress.ip_network("198.51.100.0/24"))
    for ip, hits in (("198.51.100.9", 3), ("198.51.100.10", 1)):
        for _ in range(hits):
            ctx.attempts.record(ip, block, "/v1/chat/completions", "curl")
    await ctx.attempts.flush()
    blocked = (await client.get(f"{STATS}/blocked", headers=admin)).json()
    assert [(i["ip"], i["count"]) for i in blocked["items"]] == [
        ("198.51.100.9", 3),
        ("198.51.100.10", 1),
    ]
    assert blocked["total"] == 4
    assert blocked["items"][0]["last_seen"]


def test_rollups_equal_the_raw_log_after_real_calls(
    gateway_factory: Any, mock_upstream: Any
) -> None:
    """Through the real request path: served, refused, failed and streamed calls."""
    from sqlalchemy import func as sql_func

    from app.models import CallLog, LatencyDaily

    gateway = gateway_factory()
    gateway.create_channel(base_url=mock_upstream.base_url())
    mock_upstream.set_profile("down", status=503)
    gateway.create_channel(name="down", base_url=mock_upstream.base_url("down"), models=["broken"])
    key = gateway.create_key()
    headers = {"Authorization": f"Bearer {key}"}
    calls = [
        ("mock-gpt", False),
        ("mock-gpt", True),
        ("mock-gpt", True),
        ("unknown", False),
        ("broken", False),
        ("broken", True),
    ]
    for model, stream in calls:
        body = {"model": model, "messages": [{"role": "user", "content": "hi"}], "stream": stream}
        gateway.http.post("/v1/chat/completions", json=body, headers=headers).read()
    gateway.wait_for_logs(len(calls))

    async def compare() -> tuple[list[Any], list[Any], int]:
        async with gateway.ctx.sessionmaker() as db:
            raw = (
                await db.execute(
                    select(
                        CallLog.requested_model,
                        sql_func.count(),
                        sql_func.sum(CallLog.total_tokens),
                        sql_func.sum(CallLog.prompt_tokens),
                    )
                    .group_by(CallLog.requested_model)
                    .order_by(CallLog.requested_model)
                )
            ).all()
            rolled = (
                await db.execute(
                    select(
                        UsageDaily.value,
                        sql_func.sum(UsageDaily.calls),
                        sql_func.sum(UsageDaily.total_tokens),
                        sql_func.sum(UsageDaily.prompt_tokens),
                    )
                    .where(UsageDaily.dim == "model")
                    .group_by(UsageDaily.value)
                    .order_by(UsageDaily.value)
                )
            ).all()
            latencies = await db.scalar(
                select(sql_func.sum(LatencyDaily.count)).where(LatencyDaily.kind == "duration")
            )
            return [tuple(r) for r in raw], [tuple(r) for r in rolled], int(latencies or 0)

    raw, rolled, latencies = gateway.run(compare)
    assert raw == rolled
    assert [r[0] for r in raw] == ["broken", "mock-gpt", "unknown"]
    assert latencies == 3, "one latency sample per served call"


@pytest.mark.slow
async def test_the_rebuild_command_recomputes_the_statistics(
    harness_factory: HarnessFactory, database: Any, tmp_path: Any
) -> None:
    from sqlalchemy import delete

    from tests.processes import app_env, start_cli

    harness = await harness_factory()
    await write(harness.app, sample(300, days=4))
    before = await _rollup_rows(harness)
    async with harness.app.state.ctx.sessionmaker() as db:
        await db.execute(delete(UsageDaily))
        await db.commit()
    proc = start_cli(
        ["rebuild-stats"],
        app_env(tmp_path / "cli", database, ADMIN_PASSWORD="cli-admin-password-1"),
    )
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "rebuilt from 300 call-log rows (Asia/Shanghai)" in out
    assert await _rollup_rows(harness) == before


async def test_processes_starting_together_settle_the_time_zone_once(
    fresh_database: Any, tmp_path: Any
) -> None:
    """Every process checks the statistics' time zone at start; together they must not clash."""
    import asyncio

    from app.core import migrate
    from app.core.db import create_engine
    from tests.conftest import make_settings

    engines = [create_engine(make_settings(tmp_path / f"p{i}", fresh_database)) for i in range(4)]
    try:
        await migrate.upgrade(engines[0])
        results = await asyncio.gather(*(rollup.ensure_timezone(e, SHANGHAI) for e in engines))
        assert results == [False] * 4  # no logs yet: nothing to rebuild, the zone is just noted
        assert await rollup.timezone_in_use(engines[0]) == "Asia/Shanghai"
    finally:
        for engine in engines:
            await engine.dispose()
