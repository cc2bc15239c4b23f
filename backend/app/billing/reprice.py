"""Pricing the calls already logged again, at the prices in force when each started.

For after prices were added or corrected for past dates (`rebuild-stats --reprice`): calls of a
model that had no price get a cost, and the daily statistics are rebuilt from the new costs.
"""

from __future__ import annotations

from typing import cast

from sqlalchemy import Table, bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from app.billing.prices import PriceBook
from app.models import CallLog

CALL_LOGS = cast(Table, CallLog.__table__)
COLUMNS = (
    "id",
    "created_at",
    "requested_model",
    "channel_id",
    "end_reason",
    "prompt_tokens",
    "completion_tokens",
    "reasoning_tokens",
    "cached_tokens",
)
BATCH = 20_000


async def reprice(engine: AsyncEngine) -> int:
    """Set every call-log row's cost from the price table; returns how many changed."""
    book = PriceBook()
    await book.reload(async_sessionmaker(engine))
    columns = [CALL_LOGS.c[name] for name in COLUMNS]
    async with engine.connect() as conn:
        newest = await conn.scalar(select(func.max(CALL_LOGS.c.id))) or 0
    after, changed = 0, 0
    update = (
        CALL_LOGS.update().where(CALL_LOGS.c.id == bindparam("row_id")).values(cost=bindparam("c"))
    )
    while after < newest:
        async with engine.connect() as conn:
            result = await conn.execute(
                select(*columns, CALL_LOGS.c.cost)
                .where(CALL_LOGS.c.id > after, CALL_LOGS.c.id <= newest)
                .order_by(CALL_LOGS.c.id)
                .limit(BATCH)
            )
            rows = [dict(row._mapping) for row in result]
        if not rows:
            break
        updates = []
        for row in rows:
            cost = book.cost_of(row)
            if cost != row["cost"]:
                updates.append({"row_id": row["id"], "c": cost})
        if updates:
            async with engine.begin() as conn:
                await conn.execute(update, updates)
        changed += len(updates)
        after = rows[-1]["id"]
    return changed
