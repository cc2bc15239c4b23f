"""The tests' databases, and putting the shared one back after each test.

Each test process (each xdist worker) has one database for the whole session — a SQLite file, or a
PostgreSQL schema of its own — migrated and seeded once, as a first start of the app leaves it (the
first admin, the default agent, the runtime settings, the encryption check value). Its rows then are
the *snapshot*.

Every statement any engine in the process runs is watched (an SQLAlchemy event on `Engine`): the
tables a test inserted into, updated or deleted from are noted. When the test ends, only those
tables — and the tables whose rows point at them — are put back to the snapshot in one short
transaction. A test that wrote nothing costs nothing; none pays for emptying every table, and none
sees another's rows. (A transaction rolled back at the end of each test, as in polar's suite, cannot
work here: the app under test writes through its own engines and background writers, concurrently.)

A test whose work happens in another process (`app_env` with the shared database) cannot be
watched; it marks every table as written.
"""

from __future__ import annotations

import asyncio
import os
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pytest
from sqlalchemy import Table, event, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine
from sqlalchemy.pool import NullPool

from app.models import Base

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL") or None
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

TABLES: list[Table] = list(Base.metadata.sorted_tables)  # every table after those it points at

# The table a writing statement names first: INSERT [OR …] INTO t, UPDATE t, DELETE FROM t.
_WRITE = re.compile(
    r"^\s*(?:INSERT(?:\s+OR\s+\w+)?\s+INTO|UPDATE(?:\s+OR\s+\w+)?|DELETE\s+FROM)\s+(?:ONLY\s+)?"
    r'(?:"?\w+"?\.)?"?(\w+)"?',
    re.IGNORECASE,
)
# Statements that may write several tables or tables not named first: treated as writing all.
_WRITES_ANYTHING = re.compile(r"^\s*(?:WITH|TRUNCATE|MERGE|COPY)\b", re.IGNORECASE)
_WRITE_KEYWORD = re.compile(r"\b(?:INSERT|UPDATE|DELETE|TRUNCATE)\b", re.IGNORECASE)


def unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: the service must be available)")
    pytest.skip(reason)


class WriteLog:
    """The tables written since the last `take`, by any engine in this process."""

    def __init__(self) -> None:
        self._tables: set[str] = set()
        self._all = False
        self.holds = 0

    def record(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        match = _WRITE.match(statement)
        if match is not None:
            self._tables.add(match.group(1).lower())
        elif _WRITES_ANYTHING.match(statement) and _WRITE_KEYWORD.search(statement):
            self._all = True

    def everything(self) -> None:
        self._all = True

    def take(self) -> set[str]:
        """The written tables (all of them after `everything`), and start a new log."""
        taken = {t.name for t in TABLES} if self._all else self._tables & {t.name for t in TABLES}
        self._tables, self._all = set(), False
        return taken


WRITES = WriteLog()
event.listen(Engine, "before_cursor_execute", WRITES.record)


def _with_dependents(names: set[str]) -> set[str]:
    """`names` and every table whose rows point at one of them, directly or not: those rows
    must go before the rows they point at, and come back after them."""
    closure = set(names)
    changed = True
    while changed:
        changed = False
        for table in TABLES:
            if table.name in closure:
                continue
            if any(fk.column.table.name in closure for fk in table.foreign_keys):
                closure.add(table.name)
                changed = True
    return closure


@dataclass(frozen=True)
class DatabaseTarget:
    url: str
    pg_schema: str | None = None

    @property
    def is_postgres(self) -> bool:
        return self.url.startswith("postgresql")

    def engine_args(self) -> dict[str, Any]:
        if self.pg_schema:
            return {"connect_args": {"server_settings": {"search_path": self.pg_schema}}}
        return {}

    def written_by_another_process(self) -> None:
        """Another process will write here (nothing to do: only the shared database is put back)."""


@dataclass(frozen=True)
class SharedDatabase(DatabaseTarget):
    """The session's database: tests leave it as the snapshot found it."""

    snapshot: dict[str, list[dict[str, Any]]] = field(
        default_factory=dict, compare=False, repr=False
    )
    current: ClassVar[SharedDatabase | None] = None  # this process's, once the session made it

    def written_by_another_process(self) -> None:
        WRITES.everything()

    @contextmanager
    def kept(self) -> Iterator[None]:
        """For a fixture that outlives one test (a module's shared app): its rows stay until it
        ends, then everything written meanwhile is put back."""
        WRITES.holds += 1
        try:
            yield
        finally:
            WRITES.holds -= 1
            asyncio.run(self.restore())

    async def take_snapshot(self) -> None:
        engine = create_async_engine(self.url, poolclass=NullPool, **self.engine_args())
        try:
            async with engine.connect() as conn:
                for table in TABLES:
                    rows = (await conn.execute(select(table))).mappings().all()
                    self.snapshot[table.name] = [dict(row) for row in rows]
        finally:
            await engine.dispose()
        WRITES.take()

    async def restore(self) -> None:
        """Put every table written since the last restore back to the snapshot."""
        if WRITES.holds:
            return
        written = WRITES.take()
        if not written:
            return
        tables = _with_dependents(written)
        engine = create_async_engine(self.url, poolclass=NullPool, **self.engine_args())
        try:
            async with engine.begin() as conn:
                await self._put_back(conn, [t for t in TABLES if t.name in tables])
        finally:
            await engine.dispose()
        WRITES.take()  # the restore's own statements

    async def _put_back(self, conn: AsyncConnection, tables: list[Table]) -> None:
        for table in reversed(tables):
            await conn.execute(table.delete())
        for table in tables:
            if rows := self.snapshot.get(table.name):
                await conn.execute(table.insert(), rows)


async def _pg_execute(url: str, *statements: str) -> None:
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            for statement in statements:
                await conn.execute(text(statement))
    finally:
        await engine.dispose()


def new_pg_schema() -> str:
    assert TEST_DATABASE_URL
    schema = f"t_{uuid.uuid4().hex[:16]}"
    try:
        asyncio.run(_pg_execute(TEST_DATABASE_URL, f"CREATE SCHEMA {schema}"))
    except OSError as exc:
        unavailable(f"PostgreSQL at TEST_DATABASE_URL is unreachable: {exc}")
    return schema


def drop_pg_schema(schema: str) -> None:
    assert TEST_DATABASE_URL
    asyncio.run(_pg_execute(TEST_DATABASE_URL, f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
