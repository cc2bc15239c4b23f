"""Apply Alembic migrations from inside the app, safely when several processes start at once.

PostgreSQL: an advisory lock serialises concurrent upgrades. SQLite: an exclusive file lock next to
the database file does the same (SQLite is always on one machine). `exclusive()` is that lock, for
any other start-up work that must run in one process at a time.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"
# Any constant works; it only has to be the same in every process of this app.
PG_MIGRATION_LOCK_ID = 0x61636777  # "acgw"


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def _upgrade(connection: Connection, revision: str) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


@contextlib.asynccontextmanager
async def _file_lock(path: Path) -> AsyncIterator[None]:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        await anyio.to_thread.run_sync(fcntl.flock, fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


@contextlib.asynccontextmanager
async def exclusive(engine: AsyncEngine) -> AsyncIterator[None]:
    """Installation-wide exclusion for start-up work (migrations, statistics rebuilds): one
    process at a time. PostgreSQL: a session advisory lock held on a connection of its own;
    SQLite: a file lock next to the database file."""
    if engine.dialect.name == "sqlite":
        database = engine.url.database or ""
        lock_path = Path(f"{database}.migrate.lock") if database else None
        async with _file_lock(lock_path) if lock_path else contextlib.nullcontext():
            yield
        return
    async with engine.connect() as holder:
        await holder.execute(text("SELECT pg_advisory_lock(:id)"), {"id": PG_MIGRATION_LOCK_ID})
        await holder.commit()
        try:
            yield
        finally:
            await holder.execute(
                text("SELECT pg_advisory_unlock(:id)"), {"id": PG_MIGRATION_LOCK_ID}
            )
            await holder.commit()


async def _create_missing_schema(conn: AsyncConnection) -> None:
    """PostgreSQL with `DATABASE_PG_SCHEMA`: create that schema on first start.

    The setting becomes the connection's search_path; while the schema does not exist
    `current_schema()` is NULL and every CREATE TABLE fails with "no schema has been selected"."""
    if conn.dialect.name != "postgresql" or await conn.scalar(text("SELECT current_schema()")):
        return
    search_path = str(await conn.scalar(text("SHOW search_path")))
    if re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", search_path):  # the setting's own pattern
        await conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{search_path}"'))


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    async with exclusive(engine):
        if engine.dialect.name == "sqlite":
            await _upgrade_sqlite(engine, revision)
            return
        async with engine.begin() as conn:
            await _create_missing_schema(conn)
            await conn.run_sync(_upgrade, revision)


class ForeignKeyViolationError(RuntimeError):
    """A migration left rows pointing at rows that do not exist."""


async def _upgrade_sqlite(engine: AsyncEngine, revision: str) -> None:
    """SQLite changes a table by building a new one and dropping the old. With foreign keys on,
    dropping a table first deletes its rows — and with them, through ON DELETE CASCADE, every row
    pointing at them. So migrations run with foreign keys off (the pragma only takes effect outside
    a transaction) and are checked afterwards, before the connection goes back with them on."""
    async with engine.connect() as conn:
        await conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
        await conn.commit()
        try:
            async with conn.begin():
                await conn.run_sync(_upgrade, revision)
                broken = (await conn.exec_driver_sql("PRAGMA foreign_key_check")).fetchall()
                if broken:
                    raise ForeignKeyViolationError(
                        f"the migration left {len(broken)} rows pointing at missing rows "
                        f"(first: {tuple(broken[0])}); nothing was changed"
                    )
        finally:
            await conn.exec_driver_sql("PRAGMA foreign_keys=ON")
            await conn.commit()
