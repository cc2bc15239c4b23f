"""Batched, non-blocking call-log writes.

`submit()` only appends to an in-memory queue (it never waits and never fails), so it is safe in a
`finally` that runs during cancellation. A background task inserts queued rows in batches every
`flush_interval_seconds` (or sooner when a batch fills). If the database is unavailable the rows stay
queued and are retried; `stop()` (on shutdown) writes everything that is left. Each flush also
adds the batch to the daily statistics (`app.stats.rollup`) and records when the API keys in the
batch were last used, in the same transaction — and records the calls still running that have
run for a while (`logs.journal`), removing those whose rows it writes, so a crash leaves a trace.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, cast
from zoneinfo import ZoneInfo

import orjson
from sqlalchemy import JSON, Boolean, Table, bindparam
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, StatementError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.core.config import CallLogSettings
from app.core.sqlite_gate import patient
from app.logs.journal import Journal, JournaledCall, JournalWork, ReplyState
from app.models import ApiKey, CallInFlight, CallLog, User
from app.models.base import UTCDateTime, utcnow
from app.stats import rollup

CALL_LOGS = cast(Table, CallLog.__table__)
API_KEYS = cast(Table, ApiKey.__table__)
USERS = cast(Table, User.__table__)
IN_FLIGHT = cast(Table, CallInFlight.__table__)
Extra = Callable[[AsyncConnection], Awaitable[None]]
Encoder = Callable[[list[dict[str, Any]]], list[tuple[Any, ...]]]


def driver_insert(dialect: str) -> tuple[str, Encoder]:
    """The INSERT for call-log rows in the driver's own placeholder style, and a row encoder.

    Rows go to the driver's `executemany` already in the driver's types, skipping SQLAlchemy's
    per-row parameter processing: measured, that processing cost more CPU than SQLite's insert
    itself, on the hot path's core. The converters follow the table's column types, so a new
    column needs no change here (other types pass through as they are).
    """
    columns = [column for column in CALL_LOGS.columns if not column.primary_key]
    sqlite = dialect == "sqlite"
    if sqlite:
        marks = ", ".join("?" for _ in columns)
    else:
        marks = ", ".join(f"${index}" for index in range(1, len(columns) + 1))
    names = ", ".join(column.name for column in columns)
    statement = f"INSERT INTO {CALL_LOGS.name} ({names}) VALUES ({marks})"  # noqa: S608 (names from metadata)

    def timestamp(value: datetime | None) -> Any:
        if value is None or not sqlite:
            return value
        # SQLAlchemy's SQLite format, "%Y-%m-%d %H:%M:%S.%f" (isoformat is twice as fast)
        return value.astimezone(UTC).isoformat(" ", "microseconds")[:26]

    def as_json(value: Any) -> str | None:
        return None if value is None else orjson.dumps(value).decode()

    def as_bool(value: Any) -> Any:
        return None if value is None else (int(bool(value)) if sqlite else bool(value))

    keys = [column.name for column in columns]
    converted: list[tuple[int, Callable[[Any], Any]]] = []
    for index, column in enumerate(columns):
        if isinstance(column.type, UTCDateTime):
            converted.append((index, timestamp))
        elif isinstance(column.type, JSON):
            converted.append((index, as_json))
        elif isinstance(column.type, Boolean):
            converted.append((index, as_bool))

    def encode(batch: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
        encoded = []
        for row in batch:
            values = list(map(row.get, keys))
            for index, convert in converted:
                values[index] = convert(values[index])
            encoded.append(tuple(values))
        return encoded

    return statement, encode


logger = logging.getLogger(__name__)
SLOW_WRITE_SECONDS = 1.0
RETRY_DELAY_SECONDS = 1.0


SQLITE_BUSY, SQLITE_LOCKED = 5, 6


def _busy(exc: Exception) -> bool:
    """SQLite's write lock stayed with another process past the wait (not a failure: retried)."""
    code = getattr(getattr(exc, "orig", None), "sqlite_errorcode", None)
    return code in (SQLITE_BUSY, SQLITE_LOCKED)


def _row_refused(exc: Exception) -> bool:
    """The database refused these rows (not: the database is unavailable)."""
    if isinstance(exc, IntegrityError | DataError):
        return True
    # PostgreSQL's classes 22 (data exception) and 23 (integrity) are about the rows themselves,
    # however the driver's error is wrapped.
    sqlstate = getattr(getattr(exc, "orig", None), "sqlstate", None)
    if isinstance(sqlstate, str) and sqlstate[:2] in ("22", "23"):
        return True
    return isinstance(exc, StatementError) and not isinstance(exc, DBAPIError)


class CallLogWriter:
    def __init__(
        self,
        engine: AsyncEngine,
        settings: CallLogSettings,
        tz: ZoneInfo,
        on_written: Callable[[list[dict[str, Any]]], None] | None = None,
        journal: Journal | None = None,
        price: Callable[[dict[str, Any]], int | None] | None = None,
    ) -> None:
        self._engine = engine
        self._price = price  # a row's cost (`billing.prices`), for rows that come without one
        self.journal = journal
        self._tz = tz
        self._on_written = on_written
        self._statement, self._encode = driver_insert(engine.dialect.name)
        self._sqlite = engine.dialect.name == "sqlite"
        self._settings = settings
        self._queue: deque[dict[str, Any]] = deque()
        self._in_flight: list[dict[str, Any]] = []  # the batch being written
        self._wakeup = asyncio.Event()
        # One batch at a time: flush() waits for a batch the background task is still writing.
        self._writing = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.dropped = 0
        self.written = 0

    @property
    def pending(self) -> int:
        return len(self._queue)

    def pending_cost(self, dim: str, subject: int) -> int:
        """The cost of the rows not yet in the database of a user ("user"), an API key ("key"),
        or a user paying from a balance ("balance")."""
        field = "api_key_id" if dim == "key" else "user_id"
        total = 0
        for rows in (self._queue, self._in_flight):
            for row in rows:
                if row.get(field) == subject and (dim != "balance" or row.get("balance")):
                    total += row.get("cost") or 0
        return total

    def begin(self, call: JournaledCall, reply: ReplyState | None = None) -> None:
        """A call has started: recorded in `calls_in_flight` if it is still running a little
        later (`reply`: a chat reply's partial message, written again every few seconds)."""
        if self.journal is not None:
            self.journal.begin(call, reply)

    def submit(self, row: dict[str, Any]) -> None:
        if len(self._queue) >= self._settings.max_pending:
            self._queue.popleft()
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                logger.error("Call-log queue full: %d rows dropped so far", self.dropped)
        self._queue.append(row)
        if len(self._queue) >= self._settings.batch_size:
            self._wakeup.set()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="call-log-writer")

    async def stop(self) -> None:
        """Write everything still queued, then end the background task."""
        self._stopping = True
        self._wakeup.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        # Anything submitted while the task was finishing.
        while self._queue and await self._write_batch():
            pass

    async def flush(self) -> None:
        """Write what is queued now, and wait for what is being written (tests, shutdown)."""
        while self._queue:
            if not await self._write_batch():
                raise RuntimeError("call logs could not be written")
        async with self._writing:
            pass

    async def _run(self) -> None:
        interval = self._settings.flush_interval_seconds
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(interval):
                    await self._wakeup.wait()
            self._wakeup.clear()
            if not self._queue and self.journal is not None and self.journal.due():
                await self._write_batch()  # no rows, but running calls to record
            # Drain what is queued now; rows arriving meanwhile wait for the next tick, so a
            # steady trickle is written in batches rather than one row per transaction.
            remaining = len(self._queue)
            while remaining > 0 and self._queue:
                size = min(remaining, self._settings.batch_size)
                remaining -= size
                if not await self._write_batch(size):
                    if self._stopping:
                        return
                    await asyncio.sleep(RETRY_DELAY_SECONDS)
                    break
            if self._stopping and not self._queue:
                return

    async def _write_batch(self, limit: int | None = None) -> bool:
        """Write one batch. False: the database is unavailable (the batch is queued again)."""
        async with self._writing:
            return await self._write_locked(limit)

    async def _write_locked(self, limit: int | None) -> bool:
        size = min(len(self._queue), limit or self._settings.batch_size, self._settings.batch_size)
        batch = [self._queue.popleft() for _ in range(size)]
        work = self._journal_work(batch)
        if not batch and not work:
            return True
        self._in_flight = batch
        try:
            return await self._write_rows(batch, work)
        finally:
            self._in_flight = []

    async def _write_rows(self, batch: list[dict[str, Any]], work: JournalWork) -> bool:
        try:
            await self._insert(batch, work)
        except Exception as exc:
            if self.journal is not None:
                self.journal.give_back(work)
            if _busy(exc):
                return self._requeue(batch, busy=True)
            if not _row_refused(exc):
                return self._requeue(batch)
            # The journal's part on its own (its entries must not outlive their rows).
            work = self._journal_work(batch)
            if work:
                try:
                    await self._insert([], work)
                except Exception:
                    if self.journal is not None:
                        self.journal.give_back(work)
                    return self._requeue(batch)
            # A row the database refuses: write the others one by one, set the bad one aside.
            logger.error(
                "A call-log batch was refused (%s); writing rows one by one", type(exc).__name__
            )
            for index, row in enumerate(batch):
                try:
                    await self._insert([row])
                except Exception as row_exc:
                    if not _row_refused(row_exc):
                        return self._requeue(batch[index:])
                    self.dropped += 1
                    logger.exception(
                        "Dropped a call-log row the database refuses: %s", row.get("request_id")
                    )
                else:
                    self.written += 1
                    self._written([row])
            return True
        self.written += len(batch)
        self._written(batch)
        return True

    def _written(self, rows: list[dict[str, Any]]) -> None:
        if self._on_written is not None:
            try:
                self._on_written(rows)
            except Exception:
                logger.exception("Counting written call-log rows failed")

    def _requeue(self, batch: list[dict[str, Any]], *, busy: bool = False) -> bool:
        if busy:
            logger.warning(
                "Call-log rows waited %.0f s for another process's write to SQLite; will retry "
                "(at this rate of calls, use PostgreSQL: docs/operations.md)",
                self._settings.sqlite_wait_seconds,
            )
        else:
            logger.exception("Writing %d call-log rows failed; will retry", len(batch))
        self._queue.extendleft(reversed(batch))
        return False

    def _journal_work(self, batch: list[dict[str, Any]]) -> JournalWork:
        if self.journal is None:
            return JournalWork()
        ended = [row["journal_id"] for row in batch if row.get("journal_id")]
        return self.journal.take(ended)

    async def write_recovered(self, rows: list[dict[str, Any]], extra: Extra) -> None:
        """Log rows of calls a dead server left, with `extra` (removing what they were
        recovered from, storing their replies) in the same transaction."""
        await self._insert(rows, JournalWork(), extra)
        self.written += len(rows)
        self._written(rows)

    async def _insert(
        self,
        batch: list[dict[str, Any]],
        work: JournalWork | None = None,
        extra: Extra | None = None,
    ) -> None:
        last_used: dict[int, Any] = {}
        paid: dict[int, int] = {}  # user → cost taken from their balance
        price = self._price
        for row in batch:
            if price is not None and "cost" not in row:
                row["cost"] = price(row)
            if row.get("balance") and row.get("cost"):
                paid[row["user_id"]] = paid.get(row["user_id"], 0) + row["cost"]
            key_id = row.get("api_key_id")
            if key_id is not None and (
                key_id not in last_used or row["created_at"] > last_used[key_id]
            ):
                last_used[key_id] = row["created_at"]
        aggregates = rollup.Aggregates().extend(batch, self._tz)
        rows = self._encode(batch)
        started = time.monotonic()
        async with self._engine.begin() as conn, patient(conn, self._settings.sqlite_wait_seconds):
            if rows:
                await conn.exec_driver_sql(self._statement, rows)
                await rollup.add(conn, aggregates)
            if last_used:  # one statement for the batch's keys
                await conn.execute(
                    API_KEYS.update()
                    .where(API_KEYS.c.id == bindparam("key_id"))
                    .values(last_used_at=bindparam("when")),
                    [{"key_id": key, "when": when} for key, when in last_used.items()],
                )
            if paid:  # the balance is what was credited less what calls cost
                await conn.execute(
                    USERS.update()
                    .where(USERS.c.id == bindparam("user"), USERS.c.balance_nano.is_not(None))
                    .values(balance_nano=USERS.c.balance_nano - bindparam("cost")),
                    [{"user": user, "cost": cost} for user, cost in paid.items()],
                )
            if work:
                await _write_journal(conn, work)
            if extra is not None:
                await extra(conn)
        took = time.monotonic() - started
        if took > SLOW_WRITE_SECONDS:
            # Other writers wait this long (SQLite has one writer at a time).
            logger.warning("Writing %d call-log rows took %.1f s", len(batch), took)


async def _write_journal(conn: AsyncConnection, work: JournalWork) -> None:
    now = utcnow()
    if work.deletes:
        await conn.execute(IN_FLIGHT.delete().where(IN_FLIGHT.c.id.in_(work.deletes)))
    if work.inserts:
        await conn.execute(
            IN_FLIGHT.insert(),
            [{**record, "started_at": now, "updated_at": now} for record in work.inserts],
        )
    if work.updates:
        await conn.execute(
            IN_FLIGHT.update()
            .where(IN_FLIGHT.c.id == bindparam("journal_id"))
            .values(row=bindparam("row"), reply=bindparam("reply"), updated_at=now),
            [{"journal_id": r["id"], "row": r["row"], "reply": r["reply"]} for r in work.updates],
        )
