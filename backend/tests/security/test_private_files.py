"""What the server writes to disk is its own: files 0600, new directories 0700; and statement
parameters (user data) never reach the log through an error."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from app.core.db import create_engine
from app.main import create_app
from tests.conftest import DatabaseTarget, make_settings
from tests.live import LogCapture


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_a_new_sqlite_database_and_its_directory_are_private(tmp_path: Path) -> None:
    old_umask = os.umask(0o022)  # a usual umask: files 0644 unless the server says otherwise
    try:
        data = tmp_path / "data"
        target = DatabaseTarget(f"sqlite+aiosqlite:///{data / 'app.db'}")
        app = create_app(make_settings(data, target, database={"auto_migrate": True}))
        async with app.router.lifespan_context(app):
            pass
    finally:
        os.umask(old_umask)
    assert _mode(data) == 0o700
    created = [p for p in data.iterdir() if p.name.startswith("app.db")]
    assert {p.name for p in created} >= {"app.db"}
    for path in created:
        assert _mode(path) == 0o600, path.name


def _world_readable(*paths: Path) -> None:
    for path in paths:
        path.write_bytes(b"")
        path.chmod(0o644)


async def test_an_existing_database_readable_by_everyone_is_tightened(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    _world_readable(path, Path(f"{path}-wal"))
    settings = make_settings(tmp_path, DatabaseTarget(f"sqlite+aiosqlite:///{path}"))
    engine = create_engine(settings)
    await engine.dispose()
    assert _mode(path) == 0o600
    assert _mode(Path(f"{path}-wal")) == 0o600


async def test_statement_parameters_never_reach_an_error_or_the_log(
    tmp_path: Path, database: DatabaseTarget, log_capture: LogCapture
) -> None:
    sentinel = "private-value-5c1e0b"
    engine = create_engine(make_settings(tmp_path, database))
    try:
        with pytest.raises(IntegrityError) as caught:
            async with engine.begin() as conn:
                await conn.execute(
                    text("INSERT INTO users (id, username, username_key) VALUES (:i, :u, :k)"),
                    {"i": 1, "u": sentinel, "k": sentinel},
                )
        logging.getLogger("app").exception("as an unexpected error would be logged")
    finally:
        await engine.dispose()
    assert sentinel not in str(caught.value)
    assert "INSERT INTO users" in str(caught.value)  # the statement itself is still there
    assert not any(sentinel in line for line in log_capture.lines)
