"""Call logs: `/api/admin/logs` (every call) and `/api/usage` (the caller's own)."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from starlette.responses import StreamingResponse

from app.access.dependencies import CurrentUser, require_admin
from app.billing.money import to_nano
from app.core.deps import CoreContextDep, SessionDep
from app.core.errors import NotFoundError
from app.core.ids import BigRowId, RowIdFilter
from app.core.instants import Instant
from app.logs import export, query
from app.logs.query import EndReason, LogFilters, Source
from app.logs.schemas import CallLogRecord, LogPage, LogTotals, UsagePage, UsageRecord

router = APIRouter(
    prefix="/api/admin/logs", tags=["admin-logs"], dependencies=[Depends(require_admin)]
)
usage_router = APIRouter(prefix="/api/usage", tags=["usage"])
Limit = Annotated[int, Query(ge=1, le=200)]
Cursor = Annotated[str | None, Query(max_length=200, description="`next_cursor` of the last page")]
SortBy = Annotated[
    query.Sort, Query(description="time: newest first; cost: costliest first (unpriced last)")
]
CSV_MEDIA = "text/csv; charset=utf-8"


async def own_filters(
    since: Annotated[
        Instant | None, Query(description="From (inclusive), ISO 8601 with zone")
    ] = None,
    until: Annotated[Instant | None, Query(description="To (exclusive)")] = None,
    api_key_id: RowIdFilter = None,
    model: Annotated[str | None, Query(max_length=128)] = None,
    end_reason: EndReason | None = None,
    success: bool | None = None,
    stream: bool | None = None,
    source: Source | None = None,
    request_id: Annotated[str | None, Query(max_length=64)] = None,
    min_cost: Annotated[
        str | None,
        Query(
            max_length=32,
            pattern=r"^\d+(\.\d+)?$",
            description="Calls that cost at least this much (a decimal amount of the currency)",
        ),
    ] = None,
    unpriced: Annotated[
        bool | None,
        Query(description="true: only calls of models without a price; false: only priced ones"),
    ] = None,
) -> LogFilters:
    return LogFilters(
        min_cost=to_nano(min_cost) if min_cost is not None else None,
        unpriced=unpriced,
        since=since,
        until=until,
        api_key_id=api_key_id,
        model=model,
        end_reason=end_reason,
        success=success,
        stream=stream,
        source=source,
        request_id=request_id,
    )


async def all_filters(
    base: Annotated[LogFilters, Depends(own_filters)],
    user_id: RowIdFilter = None,
    channel_id: RowIdFilter = None,
    client_ip: Annotated[str | None, Query(max_length=45)] = None,
) -> LogFilters:
    return replace(base, user_id=user_id, channel_id=channel_id, client_ip=client_ip)


AllFilters = Annotated[LogFilters, Depends(all_filters)]
OwnFilters = Annotated[LogFilters, Depends(own_filters)]


def _csv(
    ctx: CoreContextDep, filters: LogFilters, prefix: str, *, for_caller: bool
) -> StreamingResponse:
    tz = ctx.settings.server.timezone
    name = export.filename(prefix, tz)
    return StreamingResponse(
        export.csv_stream(ctx.engine, filters, tz, for_caller=for_caller),
        media_type=CSV_MEDIA,
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def _mine(filters: LogFilters, user_id: int) -> LogFilters:
    return replace(filters, user_id=user_id)


@router.get("")
async def list_logs(
    filters: AllFilters,
    db: SessionDep,
    cursor: Cursor = None,
    limit: Limit = 50,
    sort: SortBy = "time",
) -> LogPage:
    """Call-log rows, newest (or costliest) first, 50 per page (`limit` ≤ 200); `next_cursor` →
    `?cursor=` for the next page."""
    connection = await db.connection()
    rows, following = await query.page(connection, filters, cursor=cursor, limit=limit, sort=sort)
    return LogPage(items=[CallLogRecord.model_validate(r) for r in rows], next_cursor=following)


@router.get("/totals")
async def log_totals(filters: AllFilters, db: SessionDep) -> LogTotals:
    """Requests, prompt / completion / total tokens and errors of the same filtered set."""
    return LogTotals(**await query.totals(await db.connection(), filters))


@router.get("/export", responses={200: {"content": {"text/csv": {}}}})
async def export_logs(filters: AllFilters, ctx: CoreContextDep) -> StreamingResponse:
    """The filtered set as CSV, streamed."""
    return _csv(ctx, filters, "call-logs", for_caller=False)


@router.get("/{log_id}")
async def get_log(log_id: BigRowId, db: SessionDep) -> CallLogRecord:
    """One row, with user, key and channel names."""
    row = await query.one(await db.connection(), log_id)
    if row is None:
        raise NotFoundError("Log entry not found", code="log_not_found")
    return CallLogRecord.model_validate(row)


@usage_router.get("")
async def list_usage(
    filters: OwnFilters,
    user: CurrentUser,
    db: SessionDep,
    cursor: Cursor = None,
    limit: Limit = 50,
    sort: SortBy = "time",
) -> UsagePage:
    """Your own calls, newest (or costliest) first, like the admin's call log but without channel
    details."""
    mine = _mine(filters, user.id)
    connection = await db.connection()
    rows, following = await query.page(connection, mine, cursor=cursor, limit=limit, sort=sort)
    return UsagePage(items=[UsageRecord.for_caller(r) for r in rows], next_cursor=following)


@usage_router.get("/totals")
async def usage_totals(filters: OwnFilters, user: CurrentUser, db: SessionDep) -> LogTotals:
    """Totals of your own calls for the same filters."""
    return LogTotals(**await query.totals(await db.connection(), _mine(filters, user.id)))


@usage_router.get("/export", responses={200: {"content": {"text/csv": {}}}})
async def export_usage(
    filters: OwnFilters, user: CurrentUser, ctx: CoreContextDep
) -> StreamingResponse:
    """Your own calls as CSV, streamed (no channel details)."""
    return _csv(ctx, _mine(filters, user.id), "usage", for_caller=True)


@usage_router.get("/{log_id}")
async def get_usage(log_id: BigRowId, user: CurrentUser, db: SessionDep) -> UsageRecord:
    """One of your own calls (no channel details)."""
    row = await query.one(await db.connection(), log_id, user_id=user.id)
    if row is None:
        raise NotFoundError("Log entry not found", code="log_not_found")
    return UsageRecord.for_caller(row)
