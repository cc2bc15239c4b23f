"""Retention deletes exactly the rows past the retention time, in batches, while writes go on."""

from __future__ import annotations

import asyncio
import threading
import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import event, func, select, text

from app.core.config import CallLogSettings
from app.devtools.mock_upstream import MockServer
from app.logs.retention import Retention
from app.models import CallLog, ModelResponse, UsageDaily, User
from app.models.base import utcnow
from tests.conftest import Harness, HarnessFactory
from tests.live import GatewayFactory
from tests.logs.rows import sample, write


def _retention(harness: Harness, batch: int = 100, **kwargs: Any) -> Retention:
    ctx = harness.app.state.ctx
    settings = CallLogSettings(_env_file=None, retention_batch_size=batch)  # type: ignore[call-arg]
    return Retention(ctx.engine, ctx.runtime, settings, **kwargs)


async def _ids(harness: Harness) -> set[str]:
    async with harness.app.state.ctx.sessionmaker() as db:
        return set((await db.scalars(select(CallLog.request_id))).all())


async def test_only_rows_older_than_the_retention_go_and_statistics_stay(
    harness_factory: HarnessFactory,
) -> None:
    harness = await harness_factory(runtime={"log_retention_days": 30})
    old = sample(450, days=20, seed=1)
    old = [
        {**r, "created_at": r["created_at"] - timedelta(days=40), "request_id": f"old-{i}"}
        for i, r in enumerate(old)
    ]
    # Around the cut-off, which retention takes from the clock (NOW is when the sample module
    # was imported, possibly many minutes ago in a long run).
    now = utcnow()
    edge = [
        {
            **old[0],
            "request_id": "just-kept",
            "created_at": now - timedelta(days=30) + timedelta(minutes=5),
        },
        {
            **old[0],
            "request_id": "just-gone",
            "created_at": now - timedelta(days=30) - timedelta(minutes=5),
        },
    ]
    recent = sample(300, days=25, seed=2)
    await write(harness.app, [*old, *edge, *recent])
    async with harness.app.state.ctx.sessionmaker() as db:
        rolled = await db.scalar(select(func.sum(UsageDaily.calls)).where(UsageDaily.dim == "all"))

    deleted = await _retention(harness, batch=100).run_once()
    assert deleted == len(old) + 1
    assert await _ids(harness) == {r["request_id"] for r in recent} | {"just-kept"}
    async with harness.app.state.ctx.sessionmaker() as db:
        after = await db.scalar(select(func.sum(UsageDaily.calls)).where(UsageDaily.dim == "all"))
    assert after == rolled, "the dashboard keeps its history"
    assert await _retention(harness).run_once() == 0


async def test_kept_responses_go_after_their_own_retention(
    harness_factory: HarnessFactory,
) -> None:
    harness = await harness_factory(runtime={"log_retention_days": 0, "response_retention_days": 7})
    ctx = harness.app.state.ctx
    async with ctx.sessionmaker() as db:
        admin_id = await db.scalar(select(User.id).order_by(User.id))
        for name, age in (("resp_old", 8), ("resp_recent", 6)):
            db.add(
                ModelResponse(
                    id=name,
                    user_id=admin_id,
                    model="m",
                    messages=[],
                    body={"id": name},
                    created_at=utcnow() - timedelta(days=age),
                )
            )
        await db.commit()
    assert await _retention(harness).run_once() == 1
    async with ctx.sessionmaker() as db:
        assert set((await db.scalars(select(ModelResponse.id))).all()) == {"resp_recent"}


async def test_zero_days_keeps_everything(harness: Harness) -> None:
    old = [{**r, "created_at": r["created_at"] - timedelta(days=4000)} for r in sample(20)]
    await write(harness.app, old)
    harness.app.state.ctx.runtime.apply(
        harness.app.state.ctx.runtime.current.model_copy(update={"log_retention_days": 0})
    )
    assert await _retention(harness).run_once() == 0
    assert len(await _ids(harness)) == 20


async def test_sqlite_gives_the_freed_space_back(harness_factory: HarnessFactory) -> None:
    harness = await harness_factory(runtime={"log_retention_days": 1})
    engine = harness.app.state.ctx.engine
    if engine.dialect.name != "sqlite":
        pytest.skip("incremental vacuum is SQLite's")
    async with engine.connect() as conn:
        mode = await conn.scalar(text("PRAGMA auto_vacuum"))
    if mode != 2:
        pytest.skip(
            "this database file was created by an earlier test run's app (auto_vacuum is set on creation)"
        )
    rows = [
        {**r, "created_at": r["created_at"] - timedelta(days=10), "error_message": "x" * 2000}
        for r in sample(3000, seed=5)
    ]
    await write(harness.app, rows)
    async with engine.connect() as conn:
        pages_before = await conn.scalar(text("PRAGMA page_count"))
    assert await _retention(harness, batch=1000).run_once() == 3000
    async with engine.connect() as conn:
        pages_after = await conn.scalar(text("PRAGMA page_count"))
        free = await conn.scalar(text("PRAGMA freelist_count"))
    assert free == 0
    assert pages_after < pages_before / 2


async def test_with_redis_one_process_at_a_time(harness: Harness, redis_url: str) -> None:
    from redis.asyncio import Redis

    old = [{**r, "created_at": r["created_at"] - timedelta(days=200)} for r in sample(50)]
    await write(harness.app, old)
    prefix = f"t{uuid.uuid4().hex[:8]}"
    client = Redis.from_url(redis_url)
    try:
        await client.set(f"{prefix}:retention-lock", "someone-else", ex=30)
        held = _retention(harness, redis=client, prefix=prefix)
        assert await held.run_once() == 0, "another process is running it"
        await client.delete(f"{prefix}:retention-lock")
        assert await held.run_once() == 50
        assert await client.get(f"{prefix}:retention-lock") is None, "released afterwards"
    finally:
        await client.aclose()


def test_calls_keep_working_while_retention_deletes(
    gateway_factory: GatewayFactory, mock_upstream: MockServer
) -> None:
    """No `database is locked` (or anything else) reaches a client, and no new row is lost."""
    gateway = gateway_factory(runtime={"log_retention_days": 30})
    gateway.create_channel(base_url=mock_upstream.base_url())
    key = gateway.create_key()
    old = [
        {**r, "created_at": r["created_at"] - timedelta(days=60), "request_id": f"old-{i}"}
        for i, r in enumerate(sample(20_000, days=5, seed=9))
    ]

    async def seed() -> None:
        writer = gateway.ctx.call_logs
        for row in old:
            writer.submit(row)
        await writer.flush()

    gateway.run(seed, timeout=120)
    statuses: list[int] = []
    stop = threading.Event()

    def traffic() -> None:
        with httpx.Client(base_url=gateway.url, timeout=30) as client:
            while not stop.is_set():
                response = client.post(
                    "/v1/chat/completions",
                    json={"model": "mock-gpt", "messages": [{"role": "user", "content": "hi"}]},
                    headers={"Authorization": f"Bearer {key}"},
                )
                statuses.append(response.status_code)

    threads = [threading.Thread(target=traffic) for _ in range(4)]
    for thread in threads:
        thread.start()
    try:
        settings = CallLogSettings(_env_file=None, retention_batch_size=500)  # type: ignore[call-arg]
        retention = Retention(gateway.ctx.engine, gateway.ctx.runtime, settings)
        deleted = gateway.run(retention.run_once, timeout=120)
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
    assert deleted == len(old)
    assert statuses
    assert set(statuses) == {200}
    rows = gateway.wait_for_logs(len(statuses))
    assert len(rows) == len(statuses), "one row per call made during the deletes"
    assert all(not r.request_id.startswith("old-") for r in rows)


async def test_each_batch_deletes_by_primary_key_whatever_the_statistics(
    harness_factory: HarnessFactory,
) -> None:
    """No delete carries its own batch query: `DELETE … WHERE id IN (SELECT … LIMIT n)` once
    ran the subquery per row under a plan PostgreSQL chose on stale statistics (20 s a batch
    over 130k rows, in the load test above). The ids are read first, then deleted by key."""
    harness = await harness_factory(runtime={"log_retention_days": 30})
    engine = harness.app.state.ctx.engine
    old = [
        {**r, "created_at": r["created_at"] - timedelta(days=60), "request_id": f"stale-{i}"}
        for i, r in enumerate(sample(1_200, days=5, seed=11))
    ]
    await write(harness.app, old)
    deletes: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("DELETE"):
            deletes.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", seen)
    try:
        async with asyncio.timeout(60):
            assert await _retention(harness, batch=500).run_once() == len(old)
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", seen)
    assert len(deletes) == 3  # 500 + 500 + 200
    assert not any("SELECT" in statement.upper() for statement in deletes)
    assert not any(i.startswith("stale-") for i in await _ids(harness))
