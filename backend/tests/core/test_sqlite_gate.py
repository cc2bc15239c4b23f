"""SQLite writers of one process take turns in arrival order (app.core.sqlite_gate), on real files."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.config import DatabaseSettings, ServerSettings, Settings
from app.core.db import create_engine
from app.core.sqlite_gate import patient, writes


def _settings(data_dir: Path, busy_timeout_ms: int) -> Settings:
    return Settings(
        server=ServerSettings(_env_file=None, data_dir=data_dir),
        database=DatabaseSettings(
            _env_file=None,
            url=SecretStr(f"sqlite+aiosqlite:///{data_dir / 'app.db'}"),
            sqlite_busy_timeout_ms=busy_timeout_ms,
        ),
    )


MakeEngine = Callable[[int], Awaitable[AsyncEngine]]


@pytest.fixture
async def make_engine(tmp_path: Path) -> AsyncIterator[MakeEngine]:
    """An engine on a fresh file with table `t`, given the busy timeout in ms; disposed after."""
    engines: list[AsyncEngine] = []

    async def make(busy_timeout_ms: int) -> AsyncEngine:
        engine = create_engine(_settings(tmp_path, busy_timeout_ms))
        engines.append(engine)
        async with engine.begin() as conn:
            await conn.execute(
                text("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, who TEXT)")
            )
        return engine

    yield make
    for engine in engines:
        await engine.dispose()


async def _insert(engine: AsyncEngine, who: str) -> None:
    async with engine.begin() as conn:
        await conn.execute(text("INSERT INTO t (who) VALUES (:who)"), {"who": who})


async def _rows(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as conn:
        return list((await conn.execute(text("SELECT who FROM t ORDER BY id"))).scalars())


@pytest.mark.parametrize(
    ("statement", "expected"),
    [
        ("INSERT INTO t VALUES (1)", True),
        ("  update t set x = 1", True),
        ("DELETE FROM t", True),
        ("CREATE TABLE u (x INTEGER)", True),
        ("WITH old AS (SELECT id FROM t) DELETE FROM t WHERE id IN old", True),
        ("SELECT * FROM t", False),
        ("WITH x AS (SELECT 1) SELECT * FROM x", False),
        ("SELECT updated_at FROM t", False),
        ("PRAGMA journal_mode", False),
        ("", False),
    ],
)
def test_writing_statements_are_recognised(statement: str, expected: bool) -> None:
    assert writes(statement) is expected


async def test_waiting_writers_write_in_arrival_order(make_engine: MakeEngine) -> None:
    engine = await make_engine(2000)
    async with engine.begin() as holder:
        await holder.execute(text("INSERT INTO t (who) VALUES ('holder')"))
        waiting = []
        for who in ("first", "second", "third", "fourth"):
            waiting.append(asyncio.create_task(_insert(engine, who)))
            await asyncio.sleep(0.05)  # each one queued before the next arrives
    await asyncio.gather(*waiting)
    assert await _rows(engine) == ["holder", "first", "second", "third", "fourth"]


async def test_a_writer_is_not_starved_by_a_steady_stream_of_writes(
    make_engine: MakeEngine,
) -> None:
    """SQLite's busy handler polls, so a writer can lose every try against back-to-back
    transactions until its busy timeout passes; in the queue it waits for one at most."""
    engine = await make_engine(400)
    stop = asyncio.Event()

    async def hog() -> int:
        done = 0
        while not stop.is_set():
            async with engine.begin() as conn:
                await conn.execute(text("INSERT INTO t (who) VALUES ('hog')"))
                await asyncio.sleep(0.03)  # work inside the transaction, the lock held
            done += 1
        return done

    hogs = [asyncio.create_task(hog()) for _ in range(3)]
    try:
        waits = []
        for _ in range(25):
            started = time.monotonic()
            await _insert(engine, "victim")  # fails with "database is locked" when starved
            waits.append(time.monotonic() - started)
            await asyncio.sleep(0.01)
    finally:
        stop.set()
        hog_count = sum(await asyncio.gather(*hogs))
    assert hog_count > 25  # the stream really was steady
    assert len(waits) == 25


async def test_a_wait_past_the_timeout_fails_like_a_busy_database(make_engine: MakeEngine) -> None:
    engine = await make_engine(200)
    async with engine.begin() as holder:
        await holder.execute(text("INSERT INTO t (who) VALUES ('holder')"))
        started = time.monotonic()
        with pytest.raises(OperationalError, match="database is locked"):
            await _insert(engine, "late")
        assert time.monotonic() - started >= 0.2
        # Reading is not writing: it does not wait for the turn.
        async with engine.connect() as reader:
            assert (await reader.execute(text("SELECT count(*) FROM t"))).scalar() == 0
    await _insert(engine, "next")  # the turn was not left taken by the one that gave up
    assert await _rows(engine) == ["holder", "next"]


async def test_every_way_a_transaction_ends_gives_the_turn_back(make_engine: MakeEngine) -> None:
    engine = await make_engine(300)
    # Rolled back.
    async with engine.connect() as conn:
        await conn.execute(text("INSERT INTO t (who) VALUES ('rolled back')"))
        await conn.rollback()
    await _insert(engine, "after rollback")
    # Closed without committing (the pool resets the connection).
    async with engine.connect() as conn:
        await conn.execute(text("INSERT INTO t (who) VALUES ('not committed')"))
    await _insert(engine, "after close")

    # Failed half-way.
    async def fail_half_way() -> None:
        async with engine.begin() as conn:
            await conn.execute(text("INSERT INTO t (who) VALUES ('failed')"))
            await conn.execute(text("INSERT INTO missing VALUES (1)"))

    with pytest.raises(OperationalError):
        await fail_half_way()
    await _insert(engine, "after failure")

    # Cancelled while holding the turn (a client that went away mid-request).
    holding = asyncio.Event()

    async def hold() -> None:
        async with engine.begin() as conn:
            await conn.execute(text("INSERT INTO t (who) VALUES ('cancelled')"))
            holding.set()
            await asyncio.sleep(30)

    task = asyncio.create_task(hold())
    await holding.wait()
    waiter = asyncio.create_task(_insert(engine, "after cancel"))
    await asyncio.sleep(0.05)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await waiter
    assert await _rows(engine) == [
        "after rollback",
        "after close",
        "after failure",
        "after cancel",
    ]


# Several processes on one file: each engine below has its own lock file descriptor, so two
# engines meet in the file lock exactly as two processes do.


async def _hold(engine: AsyncEngine, who: str, seconds: float, holding: asyncio.Event) -> float:
    """Write, keep the transaction open `seconds`, commit; returns when it committed."""
    async with engine.begin() as conn:
        await conn.execute(text("INSERT INTO t (who) VALUES (:who)"), {"who": who})
        holding.set()
        await asyncio.sleep(seconds)
    return time.monotonic()


async def test_processes_take_turns_through_a_lock_file(
    make_engine: MakeEngine, tmp_path: Path
) -> None:
    """The waiting process writes as soon as the other commits — not at the busy handler's next
    try, which can be 100 ms away and, under a steady stream, never come."""
    one, other = await make_engine(3000), await make_engine(3000)
    assert (tmp_path / "app.db-writers").exists()
    for _ in range(5):
        holding = asyncio.Event()
        holder = asyncio.create_task(_hold(one, "one", 0.2, holding))
        await holding.wait()
        started = time.monotonic()
        await _insert(other, "other")
        finished = time.monotonic()
        committed = await holder
        assert finished - started >= 0.15  # it did wait for the other's turn
        assert finished - committed < 0.05, f"{(finished - committed) * 1000:.0f} ms after"
    assert await _rows(one) == ["one", "other"] * 5


async def test_a_wait_for_another_process_past_the_timeout_fails_and_leaves_nothing_held(
    make_engine: MakeEngine,
) -> None:
    one, other, third = await make_engine(200), await make_engine(200), await make_engine(200)
    holding = asyncio.Event()
    holder = asyncio.create_task(_hold(one, "one", 0.6, holding))
    await holding.wait()
    with pytest.raises(OperationalError, match="database is locked"):
        await _insert(other, "late")
    # A writer cancelled while it waits for the file lock (its request went away).
    cancelled = asyncio.create_task(_insert(third, "cancelled"))
    await asyncio.sleep(0.05)
    cancelled.cancel()
    await asyncio.gather(cancelled, return_exceptions=True)
    await holder
    started = time.monotonic()
    await _insert(other, "next")  # neither the one that gave up nor the cancelled one holds it
    await _insert(third, "third")
    assert time.monotonic() - started < 0.5
    assert await _rows(one) == ["one", "next", "third"]


async def test_a_patient_transaction_waits_past_the_busy_timeout(
    make_engine: MakeEngine, tmp_path: Path
) -> None:
    """Another gated process holding the lock, then a writer outside any gate (a tool on the
    file): the patient transaction waits for both where others give up after 200 ms."""
    one, other = await make_engine(200), await make_engine(200)
    holding = asyncio.Event()
    holder = asyncio.create_task(_hold(one, "one", 0.6, holding))
    await holding.wait()
    async with other.begin() as conn, patient(conn, 5):
        await conn.execute(text("INSERT INTO t (who) VALUES ('patient')"))
    await holder

    outsider = sqlite3.connect(tmp_path / "app.db", isolation_level=None)
    try:
        outsider.execute("BEGIN IMMEDIATE")
        outsider.execute("INSERT INTO t (who) VALUES ('outsider')")
        asyncio.get_running_loop().call_later(0.6, outsider.execute, "COMMIT")
        with pytest.raises(OperationalError, match="database is locked"):
            await _insert(other, "impatient")
        async with other.begin() as conn, patient(conn, 5):
            await conn.execute(text("INSERT INTO t (who) VALUES ('patient again')"))
    finally:
        outsider.close()
    async with other.connect() as conn:  # the connection's own timeout is back
        assert (await conn.exec_driver_sql("PRAGMA busy_timeout")).scalar() == 200
    assert await _rows(one) == ["one", "patient", "outsider", "patient again"]
