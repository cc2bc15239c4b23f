"""SQLite writers of one process take turns in arrival order.

SQLite lets one connection write at a time. The others wait in its busy handler, which sleeps and
retries: whoever tries at the moment the lock is free gets it, so under a steady stream of short
writes (the call-log writer, replies being saved) one unlucky writer can lose every try until its
busy timeout passes and its request is answered 503. Inside one process this gate makes the
engine's writers queue instead: a connection takes its turn just before its first writing
statement and gives it back when its transaction ends (commit, rollback, or the connection going
back to the pool or away). The wait is bounded by the same busy timeout and fails the same way
("database is locked", a 503), so callers see no new behaviour, only fair waiting. Reads never
wait here: WAL lets them run next to the writer.

Other processes writing to the same file still meet this one in SQLite's busy handler.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections import deque
from typing import Any

from sqlalchemy import event
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.util import await_only

HOLDS_TURN = "sqlite_gate.holds_turn"  # key in the pooled connection's info dict
WRITING = ("INSERT", "UPDATE", "DELETE", "REPLACE", "CREATE", "DROP", "ALTER")


def writes(statement: str) -> bool:
    """Whether a statement takes SQLite's write lock (a CTE counts when it modifies rows)."""
    words = statement.lstrip().split(None, 1)
    if not words:
        return False
    first = words[0].upper()
    if first == "WITH":
        upper = statement.upper()
        return any(f" {word} " in f" {upper} " for word in WRITING[:4])
    return first in WRITING


class WriteGate:
    """A first-come, first-served turn to write, handed from one holder straight to the next."""

    def __init__(self, timeout_seconds: float) -> None:
        self._timeout = timeout_seconds
        self._held = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def held(self) -> bool:
        return self._held

    async def acquire(self) -> None:
        """Wait for the turn; after the timeout, fail like SQLite's busy handler does."""
        loop = asyncio.get_running_loop()
        if not self._held:
            self._held, self._loop = True, loop
            return
        turn: asyncio.Future[None] = loop.create_future()
        self._waiters.append(turn)
        try:
            async with asyncio.timeout(self._timeout):
                await turn
        except BaseException as exc:
            if turn.done() and not turn.cancelled():
                self.release()  # handed over just as the wait ended: pass it on
            else:
                self._drop(turn)
            if isinstance(exc, TimeoutError):
                raise sqlite3.OperationalError("database is locked") from None
            raise
        self._loop = loop

    def release(self) -> None:
        """Give the turn to the longest waiter, or free it. Safe from any thread."""
        loop = self._loop
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if loop is not None and running is not loop and not loop.is_closed():
            # A pooled connection finalised by the garbage collector on another thread.
            loop.call_soon_threadsafe(self.release)
            return
        while self._waiters:
            turn = self._waiters.popleft()
            if not turn.done():
                turn.set_result(None)  # the turn passes on; it stays held
                return
        self._held = False

    def _drop(self, turn: asyncio.Future[None]) -> None:
        with contextlib.suppress(ValueError):  # already handed the turn, or never queued
            self._waiters.remove(turn)


def install_write_gate(engine: AsyncEngine, timeout_seconds: float) -> WriteGate:
    """Make the engine's connections take turns to write (see the module's description)."""
    gate = WriteGate(timeout_seconds)
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "before_cursor_execute")
    def _take_turn(conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        info = conn.info
        if info.get(HOLDS_TURN) or not writes(statement):
            return
        await_only(gate.acquire())
        info[HOLDS_TURN] = True

    def _give_back(info: dict[str, Any]) -> None:
        if info.pop(HOLDS_TURN, False):
            gate.release()

    @event.listens_for(sync_engine, "commit")
    @event.listens_for(sync_engine, "rollback")
    def _transaction_ends(conn: Any) -> None:
        try:
            info = conn.info
        except SQLAlchemyError:  # invalidated: the pool's invalidate event gives the turn back
            return
        _give_back(info)

    # A connection returned, closed or invalidated mid-transaction ends its transaction too.
    @event.listens_for(sync_engine.pool, "reset")
    def _reset(_dbapi: Any, record: Any, _state: Any) -> None:
        _give_back(record.info)

    @event.listens_for(sync_engine.pool, "checkin")
    @event.listens_for(sync_engine.pool, "close")
    @event.listens_for(sync_engine.pool, "detach")
    def _gone(_dbapi: Any, record: Any) -> None:
        if record is not None:
            _give_back(record.info)

    @event.listens_for(sync_engine.pool, "invalidate")
    @event.listens_for(sync_engine.pool, "soft_invalidate")
    def _invalidated(_dbapi: Any, record: Any, _exc: Any) -> None:
        _give_back(record.info)

    return gate
