"""Writing call-log rows the way the server does (through the batched writer), for log tests."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import FastAPI

from app.devtools import log_rows

NOW = datetime.now(UTC)


def sample(count: int, *, days: float = 3, seed: int = 1, **kwargs: Any) -> list[dict[str, Any]]:
    return list(
        log_rows.rows(count, start=NOW - timedelta(days=days), end=NOW, seed=seed, **kwargs)
    )


async def write(app: FastAPI, rows: Iterable[dict[str, Any]]) -> None:
    writer = app.state.ctx.call_logs
    for row in rows:
        writer.submit(dict(row))
    await writer.flush()


def newest_first(rows: Iterable[dict[str, Any]]) -> list[str]:
    """Request ids in the API's order (created_at, then insertion order, newest first)."""
    indexed = list(enumerate(rows))
    indexed.sort(key=lambda pair: (pair[1]["created_at"], pair[0]), reverse=True)
    return [row["request_id"] for _, row in indexed]
