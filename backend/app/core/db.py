"""Database engine and sessions.

SQLite (the embedded default) gets WAL, a busy timeout, foreign keys and `synchronous=NORMAL` on
every connection, incremental auto-vacuum when the file is created, and a write gate that makes the
process's writers take turns in arrival order (`app.core.sqlite_gate`). PostgreSQL is used through
asyncpg. Engines are built in the lifespan; nothing connects at import time.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from app.core.app_secrets import ConfigError
from app.core.config import Settings
from app.core.errors import NotFoundError
from app.core.sqlite_gate import USUAL_WAIT_MS, install_write_gate

SQLITE_FILE = "app.db"
T = TypeVar("T")


def database_url(settings: Settings) -> URL:
    """The SQLAlchemy URL to use, with the async driver filled in for the common spellings."""
    configured = settings.database.url
    if configured is None:
        path = (settings.server.data_dir / SQLITE_FILE).resolve()
        return make_url(f"sqlite+aiosqlite:///{path}")
    try:
        url = make_url(configured.get_secret_value())
    except Exception as exc:  # sqlalchemy raises ArgumentError; keep the URL (a secret) out of it
        raise ConfigError("DATABASE_URL is not a valid database URL") from exc
    driver_for = {
        "postgres": "postgresql+asyncpg",
        "postgresql": "postgresql+asyncpg",
        "postgresql+asyncpg": "postgresql+asyncpg",
        "sqlite": "sqlite+aiosqlite",
        "sqlite+aiosqlite": "sqlite+aiosqlite",
    }
    driver = driver_for.get(url.drivername)
    if driver is None:
        raise ConfigError(
            f"DATABASE_URL uses '{url.drivername}'; supported are postgresql+asyncpg and "
            "sqlite+aiosqlite"
        )
    return url.set(drivername=driver)


def private_database_file(path: Path) -> None:
    """The SQLite file readable by this user only: created 0600 (in a new 0700 directory) before
    SQLite opens it — its -wal and -shm files take the database file's mode — and tightened if an
    earlier version left it readable by everyone. An existing directory is left as it is (it may
    be shared); the files in it are what hold the data."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    os.close(fd)
    for own in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        with contextlib.suppress(FileNotFoundError, PermissionError):
            if own.stat().st_uid == os.getuid():
                own.chmod(0o600)


def is_sqlite(url: URL) -> bool:
    return url.get_backend_name() == "sqlite"


def create_engine(settings: Settings) -> AsyncEngine:
    url = database_url(settings)
    db = settings.database
    kwargs: dict[str, Any] = {
        "echo": db.echo,
        "pool_pre_ping": not is_sqlite(url),
        # Statement parameters hold user data (messages, e-mail addresses, hashes): errors and
        # echo show the statement only, so a logged exception never carries them.
        "hide_parameters": True,
    }
    if is_sqlite(url):
        # aiosqlite logs every statement with its parameters at DEBUG: never, whatever the
        # configured level.
        logging.getLogger("aiosqlite").setLevel(logging.INFO)
        if url.database and url.database != ":memory:":
            private_database_file(Path(url.database))
        engine = create_async_engine(url, **kwargs)
        _install_sqlite_pragmas(engine, db.sqlite_busy_timeout_ms)
        install_write_gate(engine, db.sqlite_busy_timeout_ms / 1000)
        return engine
    kwargs.update(pool_size=db.pool_size, max_overflow=db.max_overflow)
    if db.pg_schema:
        kwargs["connect_args"] = {"server_settings": {"search_path": db.pg_schema}}
    return create_async_engine(url, **kwargs)


def _install_sqlite_pragmas(engine: AsyncEngine, busy_timeout_ms: int) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            # First, so that everything after it waits for another writer as configured.
            cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
            record.info[USUAL_WAIT_MS] = int(busy_timeout_ms)
            # Only on a new, empty file: setting it needs the write lock, so on every connection
            # a new connection would wait behind each writer (and fail after the busy timeout
            # under sustained writes). It lets retention give freed pages back to the file
            # system bit by bit (PRAGMA incremental_vacuum); it takes effect before the first table.
            cursor.execute("PRAGMA page_count")
            if cursor.fetchone()[0] == 0:
                cursor.execute("PRAGMA auto_vacuum=INCREMENTAL")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
        finally:
            cursor.close()


def create_sessionmaker(
    engine: AsyncEngine, info: dict[str, object] | None = None
) -> async_sessionmaker[AsyncSession]:
    """`info`: put into every session's `info` (e.g. the change bus, `core.events.announce`)."""
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False, info=info)


async def get_or_create(
    db: AsyncSession, model: type[T], ident: object, create: Callable[[], T]
) -> tuple[T, bool]:
    """The row with this primary key, inserting `create()` if there is none; True if inserted.

    Safe when another transaction inserts the same row at the same moment: the insert runs in a
    savepoint, and the one that loses the race reads the winner's row instead of failing.
    """
    row = await db.get(model, ident)
    if row is not None:
        return row, False
    try:
        async with db.begin_nested():
            db.add(create())
    except IntegrityError:
        row = await db.get(model, ident, populate_existing=True)
        if row is None:  # not a lost race: the row itself is wrong
            raise
        return row, False
    row = await db.get(model, ident)
    assert row is not None
    return row, True


async def get_or_404(db: AsyncSession, model: type[T], ident: object, what: str) -> T:
    """The row with this primary key, or 404 "<what> not found"."""
    row = await db.get(model, ident)
    if row is None:
        raise NotFoundError(f"{what} not found")
    return row


AFTER_COMMIT = "after_commit"


def after_commit(db: AsyncSession, callback: Callable[[], Awaitable[None] | None]) -> None:
    """Run `callback` (sync or async) once this request's transaction has committed."""
    db.info.setdefault(AFTER_COMMIT, []).append(callback)


async def commit(session: AsyncSession) -> None:
    """Commit, then run what was registered with `after_commit` (e.g. change notices)."""
    await session.commit()
    for callback in session.info.pop(AFTER_COMMIT, []):
        result = callback()
        if inspect.isawaitable(result):
            await result
