"""Deleting call-log rows older than `log_retention_days`, and responses kept by `/v1/responses`
older than `response_retention_days` (runtime settings; 0 keeps them all).

Rows go in batches of `CALL_LOG_RETENTION_BATCH_SIZE`, each its own short transaction with a pause
between, so the log writer (and every other writer on SQLite) waits at most for one batch — never
for one huge delete. On SQLite the freed pages are then handed back to the file system a few
thousand at a time (`PRAGMA incremental_vacuum`, on databases created with incremental
auto-vacuum). With Redis only one process runs it at a time (a lock that expires by itself).
The daily statistics are rollups and are not touched: the dashboard keeps its history.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from datetime import timedelta
from typing import Any, cast

from redis.asyncio import Redis
from sqlalchemy import Table, delete, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.config import CallLogSettings
from app.models import CallLog, ModelResponse
from app.models.base import utcnow
from app.runtime_settings.cache import RuntimeSettingsCache

logger = logging.getLogger(__name__)
LOGS = cast(Table, CallLog.__table__)
RESPONSES = cast(Table, ModelResponse.__table__)
PAUSE_SECONDS = 0.05
VACUUM_PAGES = 2000
_RELEASE = (
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"
)


class Retention:
    def __init__(
        self,
        engine: AsyncEngine,
        runtime: RuntimeSettingsCache,
        settings: CallLogSettings,
        redis: Redis | None = None,
        prefix: str = "acgw",
    ) -> None:
        self._engine = engine
        self._runtime = runtime
        self._settings = settings
        self._redis = redis
        self._lock_key = f"{prefix}:retention-lock"

    async def run_once(self) -> int:
        """Delete what is due; how many rows went (0 also when another process holds the lock)."""
        values = self._runtime.current
        days, keep_responses = values.log_retention_days, values.response_retention_days
        if days <= 0 and keep_responses <= 0:
            return 0
        token = secrets.token_hex(8)
        if self._redis is not None:
            ttl = max(60, int(self._settings.retention_interval_seconds))
            if not await self._redis.set(self._lock_key, token, nx=True, ex=ttl):
                return 0
        deleted = responses = 0
        try:
            if days > 0:
                deleted = await self._delete_before(LOGS, utcnow() - timedelta(days=days))
            if keep_responses > 0:
                cutoff = utcnow() - timedelta(days=keep_responses)
                responses = await self._delete_before(RESPONSES, cutoff)
            if (deleted or responses) and self._engine.dialect.name == "sqlite":
                await self._give_back_pages()
        finally:
            if self._redis is not None:
                await self._redis.eval(_RELEASE, 1, self._lock_key, token)
        if deleted:
            logger.info("Retention: deleted %d call-log rows older than %d days", deleted, days)
        if responses:
            logger.info(
                "Retention: deleted %d kept responses older than %d days",
                responses,
                keep_responses,
            )
        return deleted + responses

    async def _delete_before(self, table: Table, cutoff: object) -> int:
        """Batch by batch: the ids due (a read on the time index), then a delete by primary key.

        One statement (`DELETE … WHERE id IN (SELECT … LIMIT n)`) lets the planner run the
        subquery once per row when its statistics are stale — after a bulk of new rows that
        autovacuum has not analysed yet, PostgreSQL chose a nested loop that took 20 s a batch
        over 130k rows. Two plain statements have one plan whatever the statistics say. The read
        is its own statement so that the write transaction starts by writing (SQLite).
        """
        batch = self._settings.retention_batch_size
        due = (
            select(table.c.id)
            .where(table.c.created_at < cutoff)
            .order_by(table.c.created_at)
            .limit(batch)
        )
        deleted = 0
        while True:
            async with self._engine.connect() as conn:
                ids = list((await conn.execute(due)).scalars())
            if ids:
                async with self._engine.begin() as conn:
                    result = await conn.execute(delete(table).where(table.c.id.in_(ids)))
                deleted += result.rowcount or 0
            if len(ids) < batch:
                return deleted
            await asyncio.sleep(PAUSE_SECONDS)

    async def _give_back_pages(self) -> None:
        async with self._engine.connect() as conn:
            mode = await conn.scalar(text("PRAGMA auto_vacuum"))
        if mode != 2:  # created before incremental auto-vacuum: space is reused, not returned
            return
        while True:
            async with self._engine.connect() as conn:
                free = await conn.scalar(text("PRAGMA freelist_count")) or 0
                if free == 0:
                    return
                # Each step of this pragma frees one page, and a plain execute() steps once:
                # run it as a script (sqlite3_exec steps to the end) on the driver's connection.
                raw = await conn.get_raw_connection()
                driver: Any = raw.driver_connection
                await driver.executescript(f"PRAGMA incremental_vacuum({VACUUM_PAGES});")
            await asyncio.sleep(PAUSE_SECONDS)
