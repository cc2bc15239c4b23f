from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import text

from app.core.app_secrets import ConfigError
from app.core.config import DatabaseSettings, ServerSettings, Settings
from app.core.db import create_engine, database_url


def _settings(data_dir: Path, url: str | None = None) -> Settings:
    return Settings(
        server=ServerSettings(_env_file=None, data_dir=data_dir),
        database=DatabaseSettings(_env_file=None, url=SecretStr(url) if url else None),
    )


def test_default_is_sqlite_file_in_data_dir(tmp_path: Path) -> None:
    url = database_url(_settings(tmp_path / "d"))
    assert url.drivername == "sqlite+aiosqlite"
    assert url.database == str((tmp_path / "d" / "app.db").resolve())


@pytest.mark.parametrize(
    ("given", "driver"),
    [
        ("postgres://u@h/db", "postgresql+asyncpg"),
        ("postgresql://u@h/db", "postgresql+asyncpg"),
        ("postgresql+asyncpg://u@h/db", "postgresql+asyncpg"),
        ("sqlite:////tmp/x.db", "sqlite+aiosqlite"),
    ],
)
def test_common_url_spellings_get_the_async_driver(tmp_path: Path, given: str, driver: str) -> None:
    assert database_url(_settings(tmp_path, given)).drivername == driver


def test_unsupported_or_malformed_urls_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="mysql"):
        database_url(_settings(tmp_path, "mysql://u:secretpw@h/db"))
    with pytest.raises(ConfigError) as info:
        database_url(_settings(tmp_path, "::not a url secretpw::"))
    assert "secretpw" not in str(info.value)


async def test_sqlite_pragmas_are_set_on_every_connection(tmp_path: Path) -> None:
    engine = create_engine(_settings(tmp_path))
    try:
        # Two connections held at once: both must carry the pragmas, not just the first.
        async with engine.connect() as first, engine.connect() as second:
            for conn in (first, second):
                assert (await conn.execute(text("PRAGMA journal_mode"))).scalar() == "wal"
                assert (await conn.execute(text("PRAGMA foreign_keys"))).scalar() == 1
                assert (await conn.execute(text("PRAGMA busy_timeout"))).scalar() == 5000
                # NORMAL is 1
                assert (await conn.execute(text("PRAGMA synchronous"))).scalar() == 1
    finally:
        await engine.dispose()


async def test_a_new_database_gets_incremental_auto_vacuum(tmp_path: Path) -> None:
    engine = create_engine(_settings(tmp_path))
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE t (x INTEGER)"))
        async with engine.connect() as conn:
            assert (await conn.execute(text("PRAGMA auto_vacuum"))).scalar() == 2  # INCREMENTAL
    finally:
        await engine.dispose()


async def test_a_new_connection_opens_while_another_writer_holds_the_lock(tmp_path: Path) -> None:
    """Opening a connection takes no write lock: a pool that grows under sustained writes must
    not wait behind writers (it did, and failed after the busy timeout, when every connection
    set auto_vacuum)."""
    settings = _settings(tmp_path)
    settings.database.sqlite_busy_timeout_ms = 0  # any wait for the lock fails at once
    engine = create_engine(settings)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE t (x INTEGER)"))
        await engine.dispose()  # every connection from here on is a new one
        holder = sqlite3.connect(tmp_path / "app.db", timeout=0)
        holder.execute("BEGIN IMMEDIATE")
        holder.execute("INSERT INTO t VALUES (1)")
        try:
            async with engine.connect() as conn:
                assert (await conn.execute(text("SELECT count(*) FROM t"))).scalar() == 0
                assert (await conn.execute(text("PRAGMA journal_mode"))).scalar() == "wal"
        finally:
            holder.rollback()
            holder.close()
    finally:
        await engine.dispose()
