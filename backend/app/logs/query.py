"""Reading the call log: filters, newest-first keyset pages, totals, and batches for export.

Pages are keyset pages on `(created_at, id)` (an opaque cursor), never OFFSET: a page costs the
same at row 10 and at row 2,000,000, and rows written while someone pages through do not shift
later pages (no gaps, no duplicates). Each filter has an index that leads with it, then time.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, cast

from sqlalchemy import ColumnElement, Select, String, Table, and_, case, func, or_, select
from sqlalchemy import cast as cast_
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.billing.money import nano_text
from app.core.errors import BadRequestError
from app.models import ApiKey, CallLog, Channel, User

LOGS = cast(Table, CallLog.__table__)
EndReason = Literal["done", "client_gone", "upstream_error", "timeout", "rejected", "interrupted"]
Source = Literal["api", "chat"]
ERROR_ENDS = ("upstream_error", "timeout", "rejected", "interrupted")


@dataclass(frozen=True)
class LogFilters:
    since: datetime | None = None
    until: datetime | None = None
    user_id: int | None = None
    api_key_id: int | None = None
    model: str | None = None
    channel_id: int | None = None
    end_reason: EndReason | None = None
    success: bool | None = None
    stream: bool | None = None
    source: Source | None = None
    client_ip: str | None = None
    request_id: str | None = None
    min_cost: int | None = None  # nano-units
    unpriced: bool | None = None  # True: only calls without a price; False: only priced ones

    def conditions(self) -> list[ColumnElement[bool]]:
        c = LOGS.c
        where: list[ColumnElement[bool]] = []
        if self.since is not None:
            where.append(c.created_at >= self.since)
        if self.until is not None:
            where.append(c.created_at < self.until)
        exact = {
            "user_id": self.user_id,
            "api_key_id": self.api_key_id,
            "requested_model": self.model,
            "channel_id": self.channel_id,
            "end_reason": self.end_reason,
            "success": self.success,
            "stream": self.stream,
            "source": self.source,
            "client_ip": self.client_ip,
            "request_id": self.request_id,
        }
        where += [c[name] == value for name, value in exact.items() if value is not None]
        if self.min_cost is not None:
            where.append(c.cost >= self.min_cost)
        if self.unpriced is not None:
            where.append(c.cost.is_(None) if self.unpriced else c.cost.is_not(None))
        return where


def encode_cursor(created_at: datetime, row_id: int) -> str:
    raw = f"{created_at.isoformat()}|{row_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        stamp, _, row_id = base64.urlsafe_b64decode(padded).decode().partition("|")
        when = datetime.fromisoformat(stamp)
        if when.tzinfo is None:
            raise ValueError("naive")
        return when, int(row_id)
    except (ValueError, UnicodeDecodeError):
        raise BadRequestError(
            "The cursor is not valid", code="invalid_cursor", param="cursor"
        ) from None


def _select(filters: LogFilters, columns: Sequence[Any]) -> Select[Any]:
    return select(*columns).where(*filters.conditions())


def _before(cursor: tuple[datetime, int]) -> ColumnElement[bool]:
    # `created_at <= when` is the range both databases start the index scan from (deep pages
    # cost what the first one does); the OR only sorts out rows of that same instant. A bare
    # (a < x OR (a = x AND b < y)), or a row-value comparison, is scanned from the top instead.
    when, row_id = cursor
    c = LOGS.c
    return and_(c.created_at <= when, or_(c.created_at < when, c.id < row_id))


def page_query(filters: LogFilters, after: tuple[datetime, int] | None, limit: int) -> Select[Any]:
    query = _select(filters, [LOGS])
    if after is not None:
        query = query.where(_before(after))
    return query.order_by(LOGS.c.created_at.desc(), LOGS.c.id.desc()).limit(limit)


def cost_page_query(filters: LogFilters, after: tuple[int, int] | None, limit: int) -> Select[Any]:
    """Keyset pages on (cost, id), costliest first. No index leads with cost (each would cost
    every insert): the filtered rows are sorted, so narrow them (a time span, a user) first."""
    query = _select(filters, [LOGS])
    # Costliest first: calls without a price (null) after every priced one.
    key: ColumnElement[int] = func.coalesce(LOGS.c.cost, -1)
    if after is not None:
        cost, row_id = after
        query = query.where(or_(key < cost, and_(key == cost, LOGS.c.id < row_id)))
    return query.order_by(key.desc(), LOGS.c.id.desc()).limit(limit)


def _cost_cursor(row: dict[str, Any]) -> str:
    cost = row["cost"] if row["cost"] is not None else -1
    return base64.urlsafe_b64encode(f"cost|{cost}|{row['id']}".encode()).decode().rstrip("=")


def _decode_cost_cursor(cursor: str) -> tuple[int, int]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        kind, cost, row_id = base64.urlsafe_b64decode(padded).decode().split("|")
        if kind != "cost":
            raise ValueError(kind)
        return int(cost), int(row_id)
    except (ValueError, UnicodeDecodeError):
        raise BadRequestError(
            "The cursor is not valid", code="invalid_cursor", param="cursor"
        ) from None


Sort = Literal["time", "cost"]


async def page(
    conn: AsyncConnection,
    filters: LogFilters,
    *,
    cursor: str | None,
    limit: int,
    sort: Sort = "time",
) -> tuple[list[dict[str, Any]], str | None]:
    """One page, newest (or costliest) first, and the cursor for the next (None: the last)."""
    if sort == "cost":
        query = cost_page_query(filters, _decode_cost_cursor(cursor) if cursor else None, limit + 1)
    else:
        query = page_query(filters, decode_cursor(cursor) if cursor else None, limit + 1)
    rows = [dict(row._mapping) for row in await conn.execute(query)]
    more = len(rows) > limit
    rows = rows[:limit]
    await _add_names(conn, rows)
    following = None
    if more and rows:
        last = rows[-1]
        following = (
            _cost_cursor(last) if sort == "cost" else encode_cursor(last["created_at"], last["id"])
        )
    return rows, following


async def one(
    conn: AsyncConnection, row_id: int, user_id: int | None = None
) -> dict[str, Any] | None:
    query = select(LOGS).where(LOGS.c.id == row_id)
    if user_id is not None:
        query = query.where(LOGS.c.user_id == user_id)
    row = (await conn.execute(query)).first()
    if row is None:
        return None
    rows = [dict(row._mapping)]
    await _add_names(conn, rows)
    return rows[0]


async def _add_names(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    """Usernames, key names and channel names for the rows (one query each, by primary key)."""
    lookups = (
        ("user_id", "username", User.__table__, "username"),
        ("api_key_id", "api_key_name", ApiKey.__table__, "name"),
        ("channel_id", "channel_name", Channel.__table__, "name"),
    )
    for id_field, name_field, table, column in lookups:
        table = cast(Table, table)
        ids = {row[id_field] for row in rows if row[id_field] is not None}
        names: dict[int, str] = {}
        if ids:
            result = await conn.execute(
                select(table.c.id, table.c[column]).where(table.c.id.in_(ids))
            )
            names = {row_id: name for row_id, name in result.all()}
        for row in rows:
            row[name_field] = names.get(row[id_field])


async def totals(conn: AsyncConnection, filters: LogFilters) -> dict[str, Any]:
    c = LOGS.c
    query = _select(
        filters,
        [
            func.count().label("requests"),
            func.coalesce(func.sum(c.prompt_tokens), 0).label("prompt_tokens"),
            func.coalesce(func.sum(c.completion_tokens), 0).label("completion_tokens"),
            func.coalesce(func.sum(c.total_tokens), 0).label("total_tokens"),
            func.coalesce(func.sum(case((c.end_reason.in_(ERROR_ENDS), 1), else_=0)), 0).label(
                "errors"
            ),
            func.coalesce(func.sum(c.cost), 0).label("cost"),
            func.coalesce(
                func.sum(
                    case(
                        (
                            and_(
                                c.cost.is_(None),
                                or_(c.end_reason == "done", c.total_tokens > 0),
                            ),
                            1,
                        ),
                        else_=0,
                    )
                ),
                0,
            ).label("unpriced_calls"),
        ],
    )
    row = (await conn.execute(query)).one()
    totals: dict[str, Any] = {key: int(value) for key, value in row._mapping.items()}
    totals["cost"] = nano_text(totals["cost"])
    return totals


EXPORT_COLUMNS = (
    "id",
    "created_at",
    "request_id",
    "source",
    "user_id",
    "api_key_id",
    "client_ip",
    "requested_model",
    "upstream_model",
    "channel_id",
    "channels_tried",
    "stream",
    "status_code",
    "end_reason",
    "error_message",
    "prompt_tokens",
    "completion_tokens",
    "reasoning_tokens",
    "cached_tokens",
    "total_tokens",
    "usage_source",
    "ttft_ms",
    "duration_ms",
    "cost",
)


async def batches(
    engine: AsyncEngine, filters: LogFilters, batch_size: int
) -> AsyncIterator[Sequence[Any]]:
    """Every matching row (EXPORT_COLUMNS), newest first, in keyset batches — each batch its own
    short read, so no transaction stays open however long the export takes."""
    # channels_tried stays the JSON text the database holds (no decode and re-encode per row).
    columns = [
        cast_(LOGS.c[name], String) if name == "channels_tried" else LOGS.c[name]
        for name in EXPORT_COLUMNS
    ]
    base = _select(filters, columns).order_by(LOGS.c.created_at.desc(), LOGS.c.id.desc())
    cursor: tuple[datetime, int] | None = None
    while True:
        query = base if cursor is None else base.where(_before(cursor))
        async with engine.connect() as conn:
            rows = (await conn.execute(query.limit(batch_size))).all()
        if not rows:
            return
        yield rows
        if len(rows) < batch_size:
            return
        cursor = (rows[-1].created_at, rows[-1].id)
