"""Daily rollups of call-log rows: aggregate a batch, add it to the tables, rebuild from the logs.

A day is a calendar day in the site's time zone (`SITE_TIMEZONE`). The writer adds each batch's
aggregates with one upsert per table (`x = x + excluded.x`) in the transaction that inserts the
rows, so the rollups always equal what is in the logs (until retention deletes old logs; the
rollups stay).
"""

from __future__ import annotations

import bisect
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import Table, delete, func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.core import migrate
from app.models import AppMeta, CallLog, LatencyDaily, UsageDaily

logger = logging.getLogger(__name__)
USAGE = cast(Table, UsageDaily.__table__)
LATENCY = cast(Table, LatencyDaily.__table__)
CALL_LOGS = cast(Table, CallLog.__table__)
TIMEZONE_MARK = "stats_timezone"
# Upper bounds (ms) of the latency buckets; one more bucket holds everything slower.
LATENCY_BOUNDS_MS = (
    25, 50, 100, 200, 300, 500, 750, 1000, 1500, 2000, 3000, 5000, 7500,
    10_000, 15_000, 20_000, 30_000, 45_000, 60_000, 120_000, 300_000,
)  # fmt: skip
# Ends that are failures for the dashboard (a caller who left is not one).
ERROR_ENDS = frozenset({"upstream_error", "timeout", "rejected", "interrupted"})
COUNTERS = (
    "calls",
    "errors",
    "prompt_tokens",
    "completion_tokens",
    "reasoning_tokens",
    "cached_tokens",
    "total_tokens",
    "ttft_sum_ms",
    "ttft_count",
    "duration_sum_ms",
    "cost",
    "unpriced_calls",
)
REBUILD_BATCH = 20_000


def bucket_of(ms: int) -> int:
    return bisect.bisect_left(LATENCY_BOUNDS_MS, ms)


@dataclass
class Aggregates:
    """A batch's totals. Rows are first summed per distinct (day, model, source, channel, user,
    key) — one dictionary update per row — and spread over the dimensions only at the end, since a
    batch holds far fewer distinct combinations than rows."""

    _combos: dict[tuple[Any, ...], list[int]] = field(default_factory=dict)
    latency: dict[tuple[date, int, str, int], int] = field(default_factory=dict)

    def add(self, row: Mapping[str, Any], tz: ZoneInfo) -> None:
        day = row["created_at"].astimezone(tz).date()
        ttft = row.get("ttft_ms")
        duration = row.get("duration_ms") or 0
        end = row.get("end_reason")
        channel = row.get("channel_id")
        combo = (
            day,
            row["requested_model"],
            row["source"],
            channel,
            row.get("user_id"),
            row.get("api_key_id"),
        )
        totals = self._combos.get(combo)
        if totals is None:
            totals = self._combos[combo] = [0] * len(COUNTERS)
        totals[0] += 1
        if end in ERROR_ENDS:
            totals[1] += 1
        totals[2] += row.get("prompt_tokens") or 0
        totals[3] += row.get("completion_tokens") or 0
        totals[4] += row.get("reasoning_tokens") or 0
        totals[5] += row.get("cached_tokens") or 0
        totals[6] += row.get("total_tokens") or 0
        if ttft is not None:
            totals[7] += ttft
            totals[8] += 1
        totals[9] += duration
        cost = row.get("cost")
        if cost is not None:
            totals[10] += cost
        elif end == "done" or row.get("total_tokens"):
            totals[11] += 1  # its model had no price: its cost is unknown, not zero
        if channel is not None and end == "done":
            latency = self.latency
            slot = (day, channel, "duration", bucket_of(duration))
            latency[slot] = latency.get(slot, 0) + 1
            if ttft is not None:
                slot = (day, channel, "ttft", bucket_of(ttft))
                latency[slot] = latency.get(slot, 0) + 1

    def extend(self, rows: Iterable[Mapping[str, Any]], tz: ZoneInfo) -> Aggregates:
        for row in rows:
            self.add(row, tz)
        return self

    @property
    def usage(self) -> dict[tuple[date, str, str], list[int]]:
        """Totals per (day, dimension, value)."""
        usage: dict[tuple[date, str, str], list[int]] = {}
        for (day, model, source, channel, user, key), totals in self._combos.items():
            dims = [("all", ""), ("model", model), ("source", source)]
            if channel is not None:
                dims.append(("channel", str(channel)))
            if user is not None:
                dims.append(("user", str(user)))
            if key is not None:
                dims.append(("key", str(key)))
            for dim, value in dims:
                into = usage.get((day, dim, value))
                if into is None:
                    usage[(day, dim, value)] = list(totals)
                else:
                    for index, amount in enumerate(totals):
                        into[index] += amount
        return usage


def _upsert_sql(
    dialect: str, table: Table, keys: tuple[str, ...], counters: tuple[str, ...]
) -> str:
    """`INSERT … ON CONFLICT (keys) DO UPDATE SET c = c + excluded.c` in the driver's own
    placeholder style: like the log rows, rollup rows go to the driver's executemany already
    encoded (SQLAlchemy's per-row processing cost more than the upsert itself)."""
    columns = (*keys, *counters)
    if dialect == "sqlite":
        marks = ", ".join("?" for _ in columns)
    else:
        marks = ", ".join(f"${index}" for index in range(1, len(columns) + 1))
    updates = ", ".join(f"{name} = {table.name}.{name} + excluded.{name}" for name in counters)
    return (
        f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({marks}) "  # noqa: S608 (names from metadata)
        f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {updates}"
    )


_STATEMENTS: dict[tuple[str, str], str] = {}


def _statement(dialect: str, table: Table) -> str:
    statement = _STATEMENTS.get((dialect, table.name))
    if statement is None:
        if table is USAGE:
            statement = _upsert_sql(dialect, USAGE, ("day", "dim", "value"), COUNTERS)
        else:
            statement = _upsert_sql(
                dialect, LATENCY, ("day", "channel_id", "kind", "bucket"), ("count",)
            )
        _STATEMENTS[(dialect, table.name)] = statement
    return statement


async def add(conn: AsyncConnection, aggregates: Aggregates) -> None:
    """Add a batch's aggregates to the rollup tables (inside the caller's transaction)."""
    dialect = conn.dialect.name

    def day_value(day: date) -> Any:
        return day.isoformat() if dialect == "sqlite" else day  # SQLAlchemy's SQLite format

    usage = aggregates.usage
    if usage:
        params = [
            (day_value(day), dim, value, *totals)
            for (day, dim, value), totals in sorted(usage.items())
        ]
        await conn.exec_driver_sql(_statement(dialect, USAGE), params)
    if aggregates.latency:
        params = [
            (day_value(day), channel, kind, bucket, count)
            for (day, channel, kind, bucket), count in sorted(aggregates.latency.items())
        ]
        await conn.exec_driver_sql(_statement(dialect, LATENCY), params)


ROW_COLUMNS = (
    "id",
    "created_at",
    "requested_model",
    "source",
    "channel_id",
    "user_id",
    "api_key_id",
    "end_reason",
    "prompt_tokens",
    "completion_tokens",
    "reasoning_tokens",
    "cached_tokens",
    "total_tokens",
    "ttft_ms",
    "duration_ms",
    "cost",
)


async def rebuild(engine: AsyncEngine, tz: ZoneInfo) -> int:
    """Recompute the rollups from the call logs that are kept; returns how many rows were read.

    Clearing the rollups and noting the newest log row happen in one transaction that also stops
    new log rows for that moment (SQLite: the write lock; PostgreSQL: a table lock), so rows written
    meanwhile by a running server are counted exactly once: by the writer if they came after, by
    this scan if before.
    """
    async with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            await conn.execute(text(f"LOCK TABLE {CALL_LOGS.name} IN SHARE ROW EXCLUSIVE MODE"))
        await conn.execute(delete(USAGE))
        await conn.execute(delete(LATENCY))
        newest = await conn.scalar(select(func.max(CALL_LOGS.c.id))) or 0
        await _remember_timezone(conn, tz)
    columns = [CALL_LOGS.c[name] for name in ROW_COLUMNS]
    after, read = 0, 0
    while after < newest:
        async with engine.connect() as conn:
            result = await conn.execute(
                select(*columns)
                .where(CALL_LOGS.c.id > after, CALL_LOGS.c.id <= newest)
                .order_by(CALL_LOGS.c.id)
                .limit(REBUILD_BATCH)
            )
            rows = [dict(row._mapping) for row in result]
        if not rows:
            break
        async with engine.begin() as conn:
            await add(conn, Aggregates().extend(rows, tz))
        after = rows[-1]["id"]
        read += len(rows)
    return read


async def _remember_timezone(conn: AsyncConnection, tz: ZoneInfo) -> None:
    meta = cast(Table, AppMeta.__table__)
    await conn.execute(delete(meta).where(meta.c.key == TIMEZONE_MARK))
    await conn.execute(meta.insert().values(key=TIMEZONE_MARK, value=tz.key))


async def timezone_in_use(engine: AsyncEngine) -> str | None:
    """The time zone the rollups were built in (None: never recorded)."""
    meta = cast(Table, AppMeta.__table__)
    async with engine.connect() as conn:
        value = await conn.scalar(select(meta.c.value).where(meta.c.key == TIMEZONE_MARK))
    return str(value) if value is not None else None


async def ensure_timezone(engine: AsyncEngine, tz: ZoneInfo) -> bool:
    """Rebuild the rollups if they were built for another time zone. True if it rebuilt.

    Under the installation-wide start-up lock: processes starting together check (and rebuild)
    one after the other, so the work is done once.
    """
    async with migrate.exclusive(engine):
        return await _ensure_timezone(engine, tz)


async def _ensure_timezone(engine: AsyncEngine, tz: ZoneInfo) -> bool:
    current = await timezone_in_use(engine)
    if current == tz.key:
        return False
    if current is None:
        async with engine.connect() as conn:
            empty = await conn.scalar(select(func.count()).select_from(CALL_LOGS)) == 0
        if empty:
            async with engine.begin() as conn:
                await _remember_timezone(conn, tz)
            return False
    logger.info("Statistics time zone is now %s (was %s): rebuilding the rollups", tz.key, current)
    await rebuild(engine, tz)
    return True
