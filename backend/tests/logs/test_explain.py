"""The main log and dashboard queries use the indexes meant for them (SQLite and PostgreSQL).

PostgreSQL plans with `enable_seqscan = off`, since on a test-sized table a sequential scan is
cheaper and the planner rightly prefers it; what is checked is that the index can serve the query.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Select, text

from app.logs.query import LogFilters, page_query
from app.stats.service import day_query, grouped_query
from tests.conftest import Harness
from tests.logs.rows import NOW, sample, write

# Inside the sample's three days: a cursor or range past its rows would make any index look right.
CURSOR = (NOW - timedelta(days=1), 123)
SINCE = NOW - timedelta(days=2)
FIRST_DAY, LAST_DAY = (NOW - timedelta(days=3)).date(), NOW.date()

CASES: list[tuple[str, Select[Any], str]] = [
    ("newest page", page_query(LogFilters(), None, 51), "ix_call_logs_created_at_id"),
    ("next page", page_query(LogFilters(), CURSOR, 51), "ix_call_logs_created_at_id"),
    ("time range", page_query(LogFilters(since=SINCE), CURSOR, 51), "ix_call_logs_created_at_id"),
    ("by user", page_query(LogFilters(user_id=7), CURSOR, 51), "ix_call_logs_user_id_created_at"),
    (
        "by model",
        page_query(LogFilters(model="gpt-4o"), None, 51),
        "ix_call_logs_requested_model_created_at",
    ),
    (
        "by channel",
        page_query(LogFilters(channel_id=2), None, 51),
        "ix_call_logs_channel_id_created_at",
    ),
    (
        "by key",
        page_query(LogFilters(api_key_id=3), None, 51),
        "ix_call_logs_api_key_id_created_at",
    ),
    (
        "errors",
        page_query(LogFilters(end_reason="timeout"), None, 51),
        "ix_call_logs_created_at_id",
    ),
    (
        "by address",
        page_query(LogFilters(client_ip="10.0.0.1"), None, 51),
        "ix_call_logs_client_ip_created_at",
    ),
    ("request id", page_query(LogFilters(request_id="abc"), None, 51), "ix_call_logs_request_id"),
    (
        "model share",
        grouped_query("model", FIRST_DAY, LAST_DAY),
        "ix_usage_daily_dim_day",
    ),
    ("trend", day_query("all", "", FIRST_DAY, LAST_DAY), "usage_daily"),
]


@pytest.mark.parametrize(("name", "query", "index"), CASES, ids=[c[0] for c in CASES])
async def test_query_uses_its_index(
    harness: Harness, name: str, query: Select[Any], index: str
) -> None:
    await write(harness.app, sample(500))
    engine = harness.app.state.ctx.engine
    sql = str(query.compile(dialect=engine.dialect, compile_kwargs={"literal_binds": True}))
    async with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            await conn.execute(text("ANALYZE"))
            await conn.execute(text("SET enable_seqscan = off"))
            plan = "\n".join(row[0] for row in await conn.execute(text(f"EXPLAIN {sql}")))
        else:
            await conn.execute(text("ANALYZE"))
            plan = "\n".join(
                str(row[-1]) for row in await conn.execute(text(f"EXPLAIN QUERY PLAN {sql}"))
            )
    assert index in plan, f"{name}: {plan}"
    if name in ("next page", "time range", "by user"):  # pages start the index scan at the cursor
        ranged = "SEARCH" if engine.dialect.name == "sqlite" else "Index Cond"
        assert ranged in plan, f"{name} does not start at the cursor: {plan}"
    if index.startswith("ix_call_logs") and engine.dialect.name == "sqlite":
        assert "SCAN call_logs\n" not in plan + "\n", f"{name} scans the whole table: {plan}"
