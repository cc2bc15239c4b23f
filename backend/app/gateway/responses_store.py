"""Where `/v1/responses` keeps its answers: written in batches, each caller waiting for its own.

An answer must be in the database before its last event or JSON goes out — a client's next
request (`previous_response_id`, often at once in an agent's tool loop, and possibly to another
process) looks it up there. Writing each in its own transaction cost more CPU per stream than
translating it (measured: ~1.2 ms a stream on SQLite, with the connection pool overflowing under
32 concurrent streams); here the answers waiting at one moment share one transaction and one
connection, and each caller is released when its batch has committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, cast

from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.db import commit
from app.models import ModelResponse

logger = logging.getLogger(__name__)
KEPT = cast(Table, ModelResponse.__table__)
MAX_BATCH = 500


class ResponseStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        self._pending: list[tuple[dict[str, Any], asyncio.Future[None]]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="response-store")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        while self._pending:  # nobody is left waiting unanswered
            await self._write_some()

    async def keep(self, row: dict[str, Any]) -> None:
        """Store `row` (a `model_responses` row); returns once it is committed."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((row, done))
        self._wake.set()
        if self._task is None:  # not started (a script, a test): write it now
            await self._write_some()
        await done

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                await self._write_some()

    async def _write_some(self) -> None:
        batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
        try:
            async with self._sessions() as db:
                await db.execute(KEPT.insert(), [row for row, _ in batch])
                await commit(db)
        except Exception as exc:  # every waiter hears why (it logs and answers anyway)
            for _row, done in batch:
                if not done.done():
                    done.set_exception(exc)
            return
        for _row, done in batch:
            if not done.done():
                done.set_result(None)
