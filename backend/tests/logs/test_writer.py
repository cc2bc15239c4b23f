from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core import migrate
from app.core.config import CallLogSettings, DatabaseSettings, ServerSettings, Settings
from app.core.db import create_engine, create_sessionmaker
from app.logs.writer import CallLogWriter
from app.models import CallLog
from tests.conftest import DatabaseTarget, make_settings

SETTINGS = CallLogSettings(_env_file=None, batch_size=50)


def _row(request_id: str | None, **overrides: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "created_at": datetime(2026, 11, 22, 8, 30, 15, 123456, tzinfo=UTC),
        "request_id": request_id,
        "source": "api",
        "user_id": 7,
        "api_key_id": None,
        "client_ip": "198.51.100.4",
        "requested_model": "gpt-4o",
        "upstream_model": "gpt-4o-2024",
        "channel_id": 3,
        "channels_tried": [5, 3],
        "stream": True,
        "status_code": 200,
        "success": False,
        "end_reason": "client_gone",
        "error_message": "客户端断开",
        "prompt_tokens": 12,
        "completion_tokens": 0,
        "reasoning_tokens": 4,
        "cached_tokens": 6,
        "total_tokens": 12,
        "usage_source": "provider",
        "ttft_ms": None,
        "duration_ms": 850,
    }
    row.update(overrides)
    return row


@pytest.fixture
async def engine(tmp_path: Path, fresh_database: DatabaseTarget) -> AsyncIterator[AsyncEngine]:
    """A migrated, empty database of the kind under test."""
    engine = create_engine(make_settings(tmp_path, fresh_database))
    await migrate.upgrade(engine)
    yield engine
    await engine.dispose()


async def test_rows_round_trip_with_their_types(engine: AsyncEngine) -> None:
    writer = CallLogWriter(engine, SETTINGS, ZoneInfo("Asia/Shanghai"))
    for index in range(120):  # more than two batches
        writer.submit(_row(f"r{index}"))
    await writer.flush()
    assert writer.written == 120
    async with create_sessionmaker(engine)() as db:
        rows = (await db.scalars(select(CallLog).order_by(CallLog.id))).all()
    assert len(rows) == 120
    first = rows[0]
    assert first.created_at == datetime(2026, 11, 22, 8, 30, 15, 123456, tzinfo=UTC)
    assert first.channels_tried == [5, 3]
    assert (first.stream, first.success) == (True, False)
    assert first.error_message == "客户端断开"
    assert first.ttft_ms is None
    assert (first.cached_tokens, first.reasoning_tokens, first.completion_tokens) == (6, 4, 0)


async def test_a_refused_row_is_set_aside_and_the_rest_are_written(engine: AsyncEngine) -> None:
    writer = CallLogWriter(engine, SETTINGS, ZoneInfo("Asia/Shanghai"))
    writer.submit(_row("good-1"))
    writer.submit(_row(None))  # request_id is NOT NULL
    writer.submit(_row("good-2", created_at=datetime.now(UTC) - timedelta(days=1)))
    await writer.flush()
    assert (writer.written, writer.dropped) == (2, 1)
    async with create_sessionmaker(engine)() as db:
        ids = (await db.scalars(select(CallLog.request_id).order_by(CallLog.id))).all()
    assert list(ids) == ["good-1", "good-2"]


async def test_rows_wait_while_the_database_is_unreachable(tmp_path: Path) -> None:
    settings = Settings(
        server=ServerSettings(_env_file=None, data_dir=tmp_path),
        database=DatabaseSettings(
            _env_file=None, url=SecretStr(f"sqlite+aiosqlite:///{tmp_path}/missing/dir/x.db")
        ),
    )
    engine = create_engine(settings)
    try:
        writer = CallLogWriter(engine, SETTINGS, ZoneInfo("Asia/Shanghai"))
        writer.submit(_row("kept"))
        assert await writer._write_batch() is False
        assert writer.pending == 1  # queued again, not lost
        assert writer.dropped == 0
    finally:
        await engine.dispose()


async def test_rows_wait_for_another_process_past_the_busy_timeout(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Two processes on one SQLite file (two engines: two lock-file descriptors). The other holds
    the write lock three times the busy timeout; the batch waits and is written, with no error."""

    def settings() -> Settings:
        return Settings(
            server=ServerSettings(_env_file=None, data_dir=tmp_path),
            database=DatabaseSettings(
                _env_file=None,
                url=SecretStr(f"sqlite+aiosqlite:///{tmp_path}/app.db"),
                sqlite_busy_timeout_ms=200,
            ),
        )

    ours, theirs = create_engine(settings()), create_engine(settings())
    try:
        await migrate.upgrade(ours)
        writer = CallLogWriter(
            ours, CallLogSettings(_env_file=None, sqlite_wait_seconds=10), ZoneInfo("UTC")
        )
        holding = asyncio.Event()

        async def hold() -> None:
            async with theirs.begin() as conn:
                await conn.exec_driver_sql("DELETE FROM call_logs")  # takes the write lock
                holding.set()
                await asyncio.sleep(0.6)

        holder = asyncio.create_task(hold())
        await holding.wait()
        for index in range(30):
            writer.submit(_row(f"waited-{index}"))
        with caplog.at_level(logging.WARNING, logger="app.logs.writer"):
            assert await writer._write_batch() is True
        await holder
        assert writer.written == 30
        assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
        async with ours.connect() as conn:
            count = (await conn.exec_driver_sql("SELECT count(*) FROM call_logs")).scalar()
        assert count == 30
    finally:
        await ours.dispose()
        await theirs.dispose()
