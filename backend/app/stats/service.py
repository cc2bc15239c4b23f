"""The dashboard's numbers, read from the daily rollups: each query costs O(days × values).

Days are calendar days in the site's time zone. "today" is the day so far; "week" and "month" are
the last 7 and 30 days including today; each is compared with the span of the same length just
before it. Percentiles come from latency buckets, so they are the upper bound of the bucket the
percentile falls in (an estimate that errs on the slow side).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta
from typing import Any, Literal, cast
from zoneinfo import ZoneInfo

from sqlalchemy import Select, Table, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from app.billing.money import nano_text
from app.models import ApiKey, BlockedAttempt, LatencyDaily, UsageDaily, User
from app.models import Channel as ChannelRow
from app.models.base import utcnow
from app.stats.rollup import LATENCY_BOUNDS_MS

USAGE = cast(Table, UsageDaily.__table__)
LATENCY = cast(Table, LatencyDaily.__table__)
SUMMED = (
    "calls",
    "errors",
    "prompt_tokens",
    "completion_tokens",
    "reasoning_tokens",
    "total_tokens",
    "ttft_sum_ms",
    "ttft_count",
    "duration_sum_ms",
    "cost",
    "unpriced_calls",
)
PERIODS = {"today": 1, "week": 7, "month": 30}


def today(tz: ZoneInfo) -> date:
    return utcnow().astimezone(tz).date()


def _sums(column_source: Any) -> list[Any]:
    return [func.coalesce(func.sum(column_source.c[name]), 0).label(name) for name in SUMMED]


def _public(totals: dict[str, int]) -> dict[str, Any]:
    calls = totals["calls"]
    return {
        "calls": calls,
        "errors": totals["errors"],
        "error_rate": round(totals["errors"] / calls, 4) if calls else 0.0,
        "prompt_tokens": totals["prompt_tokens"],
        "completion_tokens": totals["completion_tokens"],
        "reasoning_tokens": totals["reasoning_tokens"],
        "total_tokens": totals["total_tokens"],
        "avg_ttft_ms": round(totals["ttft_sum_ms"] / totals["ttft_count"])
        if totals["ttft_count"]
        else None,
        "avg_duration_ms": round(totals["duration_sum_ms"] / calls) if calls else None,
        "cost": nano_text(totals["cost"]),
        "unpriced_calls": totals["unpriced_calls"],
    }


def _change(now: int, before: int) -> float | None:
    """Relative change in percent; None when there was nothing before."""
    if before == 0:
        return None
    return round((now - before) / before * 100, 1)


async def _by_day(
    conn: AsyncConnection, dim: str, value: str, first: date, last: date
) -> dict[date, dict[str, int]]:
    query = day_query(dim, value, first, last)
    return {
        row.day: {name: int(getattr(row, name)) for name in SUMMED}
        for row in await conn.execute(query)
    }


def _total(days: dict[date, dict[str, int]], first: date, last: date) -> dict[str, int]:
    totals = dict.fromkeys(SUMMED, 0)
    for day, values in days.items():
        if first <= day <= last:
            for name in SUMMED:
                totals[name] += values[name]
    return totals


async def overview(conn: AsyncConnection, tz: ZoneInfo) -> dict[str, Any]:
    end = today(tz)
    days = await _by_day(conn, "all", "", end - timedelta(days=59), end)
    periods: dict[str, Any] = {}
    for name, length in PERIODS.items():
        first = end - timedelta(days=length - 1)
        before_last = first - timedelta(days=1)
        before_first = before_last - timedelta(days=length - 1)
        now, before = _total(days, first, end), _total(days, before_first, before_last)
        periods[name] = {
            "start": first.isoformat(),
            "end": end.isoformat(),
            **_public(now),
            "previous": {
                "start": before_first.isoformat(),
                "end": before_last.isoformat(),
                **_public(before),
            },
            "change_percent": {
                key: _change(now[key], before[key])
                for key in ("calls", "total_tokens", "errors", "cost")
            },
        }
    return {"timezone": tz.key, "today": end.isoformat(), "periods": periods}


async def trend(
    conn: AsyncConnection, tz: ZoneInfo, days: int, *, dim: str = "all", value: str = ""
) -> dict[str, Any]:
    end = today(tz)
    first = end - timedelta(days=days - 1)
    by_day = await _by_day(conn, dim, value, first, end)
    empty = dict.fromkeys(SUMMED, 0)
    series = [
        {
            "day": (first + timedelta(days=i)).isoformat(),
            **_public(by_day.get(first + timedelta(days=i), empty)),
        }
        for i in range(days)
    ]
    return {"timezone": tz.key, "days": days, "series": series}


def grouped_query(
    dim: str, first: date, last: date, limit: int | None = None, by: str = "calls"
) -> Select[Any]:
    """Totals per value of one dimension over a span of days, most calls (or spend) first."""
    query = (
        select(USAGE.c.value, *_sums(USAGE))
        .where(USAGE.c.dim == dim, USAGE.c.day >= first, USAGE.c.day <= last)
        .group_by(USAGE.c.value)
        .order_by(func.sum(USAGE.c[by]).desc(), USAGE.c.value)
    )
    return query if limit is None else query.limit(limit)


def day_query(dim: str, value: str, first: date, last: date) -> Select[Any]:
    return select(USAGE.c.day, *[USAGE.c[name] for name in SUMMED]).where(
        USAGE.c.dim == dim, USAGE.c.value == value, USAGE.c.day >= first, USAGE.c.day <= last
    )


async def _grouped(
    conn: AsyncConnection,
    dim: str,
    first: date,
    last: date,
    limit: int | None = None,
    by: str = "calls",
) -> list[dict[str, Any]]:
    query = grouped_query(dim, first, last, limit, by)
    return [
        {"value": row.value, **{name: int(getattr(row, name)) for name in SUMMED}}
        for row in await conn.execute(query)
    ]


def _span(tz: ZoneInfo, days: int) -> tuple[date, date]:
    end = today(tz)
    return end - timedelta(days=days - 1), end


async def models(conn: AsyncConnection, tz: ZoneInfo, days: int) -> dict[str, Any]:
    first, last = _span(tz, days)
    rows = await _grouped(conn, "model", first, last)
    calls = sum(r["calls"] for r in rows) or 1
    tokens = sum(r["total_tokens"] for r in rows) or 1
    cost = sum(r["cost"] for r in rows) or 1
    items = [
        {
            "model": r["value"],
            **_public(r),
            "call_share": round(r["calls"] / calls, 4),
            "token_share": round(r["total_tokens"] / tokens, 4),
            "cost_share": round(r["cost"] / cost, 4),
        }
        for r in rows
    ]
    return {"timezone": tz.key, "start": first.isoformat(), "end": last.isoformat(), "items": items}


async def active_users(conn: AsyncConnection, tz: ZoneInfo) -> dict[str, Any]:
    end = today(tz)
    counts = {}
    for name, length in (("today", 1), ("last_7_days", 7), ("last_30_days", 30)):
        query = select(func.count(func.distinct(USAGE.c.value))).where(
            USAGE.c.dim == "user",
            USAGE.c.day >= end - timedelta(days=length - 1),
            USAGE.c.calls > 0,
        )
        counts[name] = int(await conn.scalar(query) or 0)
    return {"timezone": tz.key, **counts}


async def top(
    conn: AsyncConnection,
    tz: ZoneInfo,
    what: Literal["user", "key"],
    days: int,
    limit: int,
    by: Literal["calls", "cost"] = "calls",
) -> dict[str, Any]:
    first, last = _span(tz, days)
    rows = await _grouped(conn, what, first, last, limit, by)
    ids = [int(r["value"]) for r in rows]
    names: dict[int, tuple[str, int | None]] = {}
    if ids:
        if what == "user":
            users = cast(Table, User.__table__)
            result = await conn.execute(
                select(users.c.id, users.c.username).where(users.c.id.in_(ids))
            )
            names = {row.id: (row.username, None) for row in result}
        else:
            keys, users = cast(Table, ApiKey.__table__), cast(Table, User.__table__)
            result = await conn.execute(
                select(keys.c.id, keys.c.name, keys.c.user_id).where(keys.c.id.in_(ids))
            )
            names = {row.id: (row.name, row.user_id) for row in result}
    items = []
    for row in rows:
        row_id = int(row["value"])
        name, owner = names.get(row_id, (None, None))
        entry: dict[str, Any] = {"id": row_id, "name": name, **_public(row)}
        if what == "key":
            entry["user_id"] = owner
        items.append(entry)
    return {"timezone": tz.key, "start": first.isoformat(), "end": last.isoformat(), "items": items}


def percentile(buckets: dict[int, int], q: float) -> int | None:
    """The upper bound (ms) of the bucket holding the q-th quantile; None without samples."""
    total = sum(buckets.values())
    if total == 0:
        return None
    target = q * total
    seen = 0
    for bucket in sorted(buckets):
        seen += buckets[bucket]
        if seen >= target:
            return LATENCY_BOUNDS_MS[min(bucket, len(LATENCY_BOUNDS_MS) - 1)]
    return LATENCY_BOUNDS_MS[-1]


async def channels(conn: AsyncConnection, tz: ZoneInfo, days: int) -> dict[str, Any]:
    first, last = _span(tz, days)
    rows = await _grouped(conn, "channel", first, last)
    latency: dict[tuple[int, str], dict[int, int]] = defaultdict(dict)
    query = (
        select(LATENCY.c.channel_id, LATENCY.c.kind, LATENCY.c.bucket, func.sum(LATENCY.c.count))
        .where(LATENCY.c.day >= first, LATENCY.c.day <= last)
        .group_by(LATENCY.c.channel_id, LATENCY.c.kind, LATENCY.c.bucket)
    )
    for channel_id, kind, bucket, count in await conn.execute(query):
        latency[(channel_id, kind)][bucket] = int(count)
    table = cast(Table, ChannelRow.__table__)
    ids = [int(r["value"]) for r in rows]
    names = {}
    if ids:
        result = await conn.execute(select(table.c.id, table.c.name).where(table.c.id.in_(ids)))
        names = {row.id: row.name for row in result}
    items = []
    for row in rows:
        channel_id = int(row["value"])
        durations, ttfts = (
            latency.get((channel_id, "duration"), {}),
            latency.get((channel_id, "ttft"), {}),
        )
        calls = row["calls"]
        items.append(
            {
                "channel_id": channel_id,
                "name": names.get(channel_id),
                **_public(row),
                "success_rate": round((calls - row["errors"]) / calls, 4) if calls else None,
                "p50_ms": percentile(durations, 0.5),
                "p95_ms": percentile(durations, 0.95),
                "ttft_p50_ms": percentile(ttfts, 0.5),
                "ttft_p95_ms": percentile(ttfts, 0.95),
            }
        )
    return {"timezone": tz.key, "start": first.isoformat(), "end": last.isoformat(), "items": items}


async def blocked(conn: AsyncConnection, tz: ZoneInfo, days: int, limit: int) -> dict[str, Any]:
    """Requests refused by the IP blacklist, per address, seen in the last `days` days."""
    table = cast(Table, BlockedAttempt.__table__)
    first, _ = _span(tz, days)
    since = datetime(first.year, first.month, first.day, tzinfo=tz)
    query = (
        select(
            table.c.ip,
            func.sum(table.c.count).label("hits"),
            func.max(table.c.last_seen).label("last_seen"),
            func.min(table.c.first_seen).label("first_seen"),
            func.max(table.c.rule_cidr).label("rule"),
        )
        .where(table.c.last_seen >= since)
        .group_by(table.c.ip)
        .order_by(func.sum(table.c.count).desc(), table.c.ip)
        .limit(limit)
    )
    items = [
        {
            "ip": row.ip,
            "count": int(row.hits),
            "rule": row.rule,
            "first_seen": _stamp(row.first_seen),
            "last_seen": _stamp(row.last_seen),
        }
        for row in await conn.execute(query)
    ]
    total = await conn.scalar(
        select(func.coalesce(func.sum(table.c.count), 0)).where(table.c.last_seen >= since)
    )
    return {
        "timezone": tz.key,
        "since": since.isoformat(),
        "total": int(total or 0),
        "items": items,
    }


def _stamp(value: Any) -> str | None:
    """Aggregates (min/max) come back unconverted on SQLite: normalise to ISO 8601 UTC."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=ZoneInfo("UTC"))
    return str(value.isoformat())
