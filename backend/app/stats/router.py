"""Dashboard statistics (`/api/admin/stats/…`) and a user's own daily usage (`/api/usage/daily`)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Header, Query, Response

from app.access.dependencies import CurrentUser, require_admin
from app.core.deps import ClientIP, SessionDep
from app.stats import service
from app.stats.context import StatsContextDep
from app.stats.schemas import (
    ActiveUsers,
    BlockedList,
    ChannelHealthList,
    ModelShares,
    Overview,
    TopList,
    Trend,
)

router = APIRouter(
    prefix="/api/admin/stats", tags=["admin-stats"], dependencies=[Depends(require_admin)]
)
usage_router = APIRouter(prefix="/api/usage", tags=["usage"])
metrics_router = APIRouter(tags=["metrics"])
Days = Annotated[int, Query(ge=1, le=366, description="Days back, today included")]
TopN = Annotated[int, Query(ge=1, le=100)]


@router.get("/overview")
async def overview(ctx: StatsContextDep, db: SessionDep) -> Overview:
    """Today, last 7 days, last 30 days: calls, tokens, errors, average TTFT, each against the span
    before it (`change_percent`)."""
    return Overview.model_validate(
        await service.overview(await db.connection(), ctx.settings.server.timezone)
    )


@router.get("/trend")
async def trend(ctx: StatsContextDep, db: SessionDep, days: Days = 7) -> Trend:
    """Per day: calls, tokens, errors, average TTFT."""
    tz = ctx.settings.server.timezone
    return Trend.model_validate(await service.trend(await db.connection(), tz, days))


@router.get("/models")
async def model_share(ctx: StatsContextDep, db: SessionDep, days: Days = 30) -> ModelShares:
    """Share of calls and tokens per model."""
    tz = ctx.settings.server.timezone
    return ModelShares.model_validate(await service.models(await db.connection(), tz, days))


@router.get("/active-users")
async def active_users(ctx: StatsContextDep, db: SessionDep) -> ActiveUsers:
    """Distinct users today, in 7 and in 30 days."""
    tz = ctx.settings.server.timezone
    return ActiveUsers.model_validate(await service.active_users(await db.connection(), tz))


TopBy = Annotated[
    Literal["calls", "cost"], Query(description="Ranked by calls, or by spend (cost)")
]


@router.get("/top-users")
async def top_users(
    ctx: StatsContextDep, db: SessionDep, days: Days = 30, limit: TopN = 10, by: TopBy = "calls"
) -> TopList:
    """The heaviest users by calls (or spend) over `days`."""
    tz = ctx.settings.server.timezone
    connection = await db.connection()
    return TopList.model_validate(await service.top(connection, tz, "user", days, limit, by))


@router.get("/top-keys")
async def top_keys(
    ctx: StatsContextDep, db: SessionDep, days: Days = 30, limit: TopN = 10, by: TopBy = "calls"
) -> TopList:
    """The heaviest API keys by calls (or spend) over `days`."""
    tz = ctx.settings.server.timezone
    connection = await db.connection()
    return TopList.model_validate(await service.top(connection, tz, "key", days, limit, by))


@router.get("/channels")
async def channel_health(ctx: StatsContextDep, db: SessionDep, days: Days = 7) -> ChannelHealthList:
    """Per channel: calls, success rate, p50 / p95 latency and time to first token."""
    tz = ctx.settings.server.timezone
    return ChannelHealthList.model_validate(await service.channels(await db.connection(), tz, days))


@router.get("/blocked")
async def blocked(
    ctx: StatsContextDep, db: SessionDep, days: Days = 7, limit: TopN = 20
) -> BlockedList:
    """Requests refused by the IP blacklist, per address."""
    tz = ctx.settings.server.timezone
    return BlockedList.model_validate(await service.blocked(await db.connection(), tz, days, limit))


@usage_router.get("/daily")
async def my_daily_usage(
    user: CurrentUser, ctx: StatsContextDep, db: SessionDep, days: Days = 30
) -> Trend:
    """The caller's calls and tokens per day."""
    tz = ctx.settings.server.timezone
    result = await service.trend(await db.connection(), tz, days, dim="user", value=str(user.id))
    return Trend.model_validate(result)


@metrics_router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}},
)
async def metrics(
    ctx: StatsContextDep,
    db: SessionDep,
    client_ip: ClientIP,
    authorization: Annotated[str | None, Header()] = None,
) -> Response:
    await ctx.metrics_access.check(client_ip, authorization, db, ctx.tokens)
    ctx.metrics.set_gauges(ctx.gauge_values)
    return Response(ctx.metrics.exposition(), media_type=ctx.metrics.content_type)
