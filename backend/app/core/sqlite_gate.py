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

Across processes (`WORKERS>1`, or a command run next to the server) the turn also takes an
exclusive lock on a file beside the database (`<database>-writers`, `FileLock`), which the kernel
hands to the next process the moment it is released — where SQLite's busy handler would have a
waiting process sleep up to 100 ms between tries and lose to the others (measured with 4 and 8
processes writing call logs: single batches waited past the 5 s busy timeout and failed). An
uncontended lock costs one system call; a contended one is waited for on a thread of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import sqlite3
import weakref
from collections import deque
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.util import await_only

HOLDS_TURN = "sqlite_gate.holds_turn"  # key in the pooled connection's info dict
# Set in a connection's info dict for a longer wait than the busy timeout (`patience`).
# Key in the pooled connection's info dict: the busy timeout it was given (`patient` restores it).
USUAL_WAIT_MS = "sqlite_gate.busy_timeout_ms"
PATIENCE = "sqlite_gate.patience"
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


class FileLock:
    """An exclusive lock shared with the other processes that open the same file (`flock`)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        # Blocking waits happen here, one at a time (this process's gate lets one writer wait).
        self._waiter = ThreadPoolExecutor(1, thread_name_prefix="sqlite-writers-lock")

    def try_acquire(self) -> bool:
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    async def acquire(self) -> None:
        if self.try_acquire():
            return
        waiting = asyncio.get_running_loop().run_in_executor(
            self._waiter, fcntl.flock, self._fd, fcntl.LOCK_EX
        )
        try:
            await asyncio.shield(waiting)
        except BaseException:
            # The thread cannot be interrupted: if it gets the lock after all, give it back.
            waiting.add_done_callback(self._release_if_taken)
            raise

    def _release_if_taken(self, waiting: asyncio.Future[None]) -> None:
        if not waiting.cancelled() and waiting.exception() is None:
            self.release()

    def release(self) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        self._waiter.shutdown(wait=False, cancel_futures=True)
        with contextlib.suppress(OSError):
            os.close(self._fd)


class WriteGate:
    """A first-come, first-served turn to write, handed from one holder straight to the next;
    with a `FileLock`, shared with other processes too."""

    def __init__(self, timeout_seconds: float, file_lock: FileLock | None = None) -> None:
        self._timeout = timeout_seconds
        self._file = file_lock
        self._held = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def held(self) -> bool:
        return self._held

    async def acquire(self, patience: float | None = None) -> None:
        """Wait for the turn; after the timeout (or `patience` seconds), fail like SQLite's busy
        handler does."""
        limit = patience or self._timeout
        loop = asyncio.get_running_loop()
        if not self._held:
            self._held, self._loop = True, loop
        else:
            turn: asyncio.Future[None] = loop.create_future()
            self._waiters.append(turn)
            try:
                async with asyncio.timeout(limit):
                    await turn
            except BaseException as exc:
                if turn.done() and not turn.cancelled():
                    self._pass_on()  # handed over just as the wait ended: pass it on
                else:
                    self._drop(turn)
                if isinstance(exc, TimeoutError):
                    raise sqlite3.OperationalError("database is locked") from None
                raise
            self._loop = loop
        if self._file is not None and not self._file.try_acquire():
            await self._wait_for_other_processes(limit)

    async def _wait_for_other_processes(self, limit: float) -> None:
        assert self._file is not None
        try:
            async with asyncio.timeout(limit):
                await self._file.acquire()
        except BaseException as exc:
            self._pass_on()  # this process's turn goes on; the file lock was never held
            if isinstance(exc, TimeoutError):
                raise sqlite3.OperationalError("database is locked") from None
            raise

    def release(self) -> None:
        """Give the turn to the longest waiter, or free it. Safe from any thread."""
        if self._on_other_thread():
            return
        if self._file is not None:
            self._file.release()  # other processes get their turn in between this one's writers
        self._pass_on()

    def _on_other_thread(self) -> bool:
        loop = self._loop
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if loop is not None and running is not loop and not loop.is_closed():
            # A pooled connection finalised by the garbage collector on another thread.
            loop.call_soon_threadsafe(self.release)
            return True
        return False

    def _pass_on(self) -> None:
        while self._waiters:
            turn = self._waiters.popleft()
            if not turn.done():
                turn.set_result(None)  # the turn passes on; it stays held
                return
        self._held = False

    def _drop(self, turn: asyncio.Future[None]) -> None:
        with contextlib.suppress(ValueError):  # already handed the turn, or never queued
            self._waiters.remove(turn)


@contextlib.asynccontextmanager
async def patient(conn: AsyncConnection, seconds: float) -> AsyncIterator[None]:
    """The transaction on `conn` waits up to `seconds` for its turn to write (this process's
    gate, other processes' file lock, SQLite's busy handler) where other writes wait the busy
    timeout. In WAL mode the write lock is taken by the first write and COMMIT does not wait, so
    the connection's own timeout is put back before the block ends. Not SQLite: no change."""
    if conn.dialect.name != "sqlite":
        yield
        return
    info = conn.info
    usual = info.get(USUAL_WAIT_MS)
    if usual is None:  # an engine without the write gate
        usual = int((await conn.exec_driver_sql("PRAGMA busy_timeout")).scalar_one())
    await conn.exec_driver_sql(f"PRAGMA busy_timeout={int(seconds * 1000)}")
    info[PATIENCE] = seconds
    try:
        yield
    finally:
        info.pop(PATIENCE, None)
        with contextlib.suppress(DBAPIError):  # a broken connection is not reused anyway
            await conn.exec_driver_sql(f"PRAGMA busy_timeout={usual}")


def install_write_gate(engine: AsyncEngine, timeout_seconds: float) -> WriteGate:
    """Make the engine's connections take turns to write (see the module's description)."""
    database = engine.url.database
    file_lock = None
    if database and database != ":memory:" and not database.startswith("file:"):
        file_lock = FileLock(Path(f"{database}-writers"))
    gate = WriteGate(timeout_seconds, file_lock)
    sync_engine = engine.sync_engine
    if file_lock is not None:
        weakref.finalize(sync_engine, file_lock.close)

    @event.listens_for(sync_engine, "before_cursor_execute")
    def _take_turn(conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        info = conn.info
        if info.get(HOLDS_TURN) or not writes(statement):
            return
        await_only(gate.acquire(info.get(PATIENCE)))
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
