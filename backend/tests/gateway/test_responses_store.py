"""Kept responses are written in shared transactions, and each caller waits for its own commit."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import event, func, select

from app.gateway.responses_store import ResponseStore
from app.models import ModelResponse, User
from app.models.base import utcnow
from tests.conftest import Harness


def _row(index: int, user_id: int) -> dict[str, Any]:
    return {
        "id": f"resp_store_{index}",
        "user_id": user_id,
        "api_key_id": None,
        "created_at": utcnow(),
        "model": "m",
        "messages": [{"role": "user", "content": str(index)}],
        "body": {"id": f"resp_store_{index}"},
    }


async def test_concurrent_answers_share_transactions_and_each_is_committed_when_released(
    harness: Harness,
) -> None:
    ctx = harness.app.state.ctx
    async with ctx.sessionmaker() as db:
        user_id = await db.scalar(select(User.id).order_by(User.id))
    commits = 0

    def count(_conn: Any) -> None:
        nonlocal commits
        commits += 1

    event.listen(ctx.engine.sync_engine, "commit", count)
    try:
        store: ResponseStore = ctx.responses

        async def keep_and_read(index: int) -> bool:
            await store.keep(_row(index, user_id))
            async with ctx.sessionmaker() as db:  # visible the moment keep() returns
                return await db.get(ModelResponse, f"resp_store_{index}") is not None

        seen = await asyncio.gather(*(keep_and_read(index) for index in range(60)))
    finally:
        event.remove(ctx.engine.sync_engine, "commit", count)
    assert all(seen)
    assert commits < 60  # shared, not one transaction per answer
    async with ctx.sessionmaker() as db:
        stored = await db.scalar(
            select(func.count())
            .select_from(ModelResponse)
            .where(ModelResponse.id.like("resp_store_%"))
        )
    assert stored == 60


async def test_a_failed_write_reaches_every_waiter_and_the_store_goes_on(harness: Harness) -> None:
    ctx = harness.app.state.ctx
    async with ctx.sessionmaker() as db:
        user_id = await db.scalar(select(User.id).order_by(User.id))
    store: ResponseStore = ctx.responses
    await store.keep(_row(1000, user_id))
    with pytest.raises(Exception, match=r"(?i)unique|constraint"):
        await store.keep(_row(1000, user_id))  # the same id again
    await store.keep(_row(1001, user_id))  # later answers are kept as before
    async with ctx.sessionmaker() as db:
        assert await db.get(ModelResponse, "resp_store_1001") is not None
