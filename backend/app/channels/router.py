"""Admin: upstream channels (`/api/admin/channels`). HTTP only: the work is `ChannelAdmin`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, status

from app.access.dependencies import require_admin
from app.channels.context import ChannelsContextDep
from app.channels.schemas import (
    ChannelCreate,
    ChannelRead,
    ChannelTestRequest,
    ChannelTestResult,
    ChannelUpdate,
    FetchModelsRequest,
    FetchModelsResult,
)
from app.core.deps import SessionDep
from app.core.ids import RowId
from app.core.pagination import Page, PageDep
from app.models import ChannelStatus

router = APIRouter(
    prefix="/api/admin/channels", tags=["admin-channels"], dependencies=[Depends(require_admin)]
)


@router.get("")
async def list_channels(
    ctx: ChannelsContextDep,
    db: SessionDep,
    page: PageDep,
    q: Annotated[str | None, Query(max_length=100)] = None,
    channel_status: Annotated[ChannelStatus | None, Query(alias="status")] = None,
    model: Annotated[str | None, Query(max_length=128)] = None,
) -> Page[ChannelRead]:
    """Channels, filtered by name (`q`), status and model; keys shown masked."""
    rows, total = await ctx.channel_admin.list_page(
        db, page, query=q, status=channel_status, model=model
    )
    return page.result(rows, total)


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_channel(
    body: ChannelCreate, ctx: ChannelsContextDep, db: SessionDep
) -> ChannelRead:
    """Add a channel: an upstream base URL, its key (stored encrypted, shown masked) and the models
    it serves, with optional model mapping, priority, weight, rate limit, timeouts, `<think>`
    splitting, tags and notes."""
    return await ctx.channel_admin.create(db, body)


@router.post("/fetch-models")
async def fetch_models_for_new_channel(
    body: FetchModelsRequest, ctx: ChannelsContextDep
) -> FetchModelsResult:
    """List an upstream's models before the channel is saved."""
    return FetchModelsResult(models=await ctx.channel_admin.fetch_models_for(body))


@router.get("/{channel_id}")
async def get_channel(channel_id: RowId, ctx: ChannelsContextDep, db: SessionDep) -> ChannelRead:
    """One channel (key masked), with the models whose circuit breaker is open."""
    return await ctx.channel_admin.get(db, channel_id)


@router.patch("/{channel_id}")
async def update_channel(
    channel_id: RowId, body: ChannelUpdate, ctx: ChannelsContextDep, db: SessionDep
) -> ChannelRead:
    """Change a channel; a new `api_key` replaces the stored one, an omitted one keeps it."""
    return await ctx.channel_admin.update(db, channel_id, body)


@router.post("/{channel_id}/enable")
async def enable_channel(channel_id: RowId, ctx: ChannelsContextDep, db: SessionDep) -> ChannelRead:
    """Switch a channel on (also one switched off automatically after auth or quota errors)."""
    return await ctx.channel_admin.set_enabled(db, channel_id, True)


@router.post("/{channel_id}/disable")
async def disable_channel(
    channel_id: RowId, ctx: ChannelsContextDep, db: SessionDep
) -> ChannelRead:
    """Switch a channel off: no call is routed to it until it is switched on again."""
    return await ctx.channel_admin.set_enabled(db, channel_id, False)


@router.delete("/{channel_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_channel(channel_id: RowId, ctx: ChannelsContextDep, db: SessionDep) -> None:
    """Delete a channel; its call-log rows keep its id."""
    await ctx.channel_admin.delete(db, channel_id)


@router.post("/{channel_id}/test")
async def test_channel(
    channel_id: RowId, body: ChannelTestRequest, ctx: ChannelsContextDep, db: SessionDep
) -> ChannelTestResult:
    """Send one small real request through this channel (even if it is disabled)."""
    return await ctx.channel_admin.test(db, channel_id, body.model)


@router.post("/{channel_id}/fetch-models")
async def fetch_models(
    channel_id: RowId,
    ctx: ChannelsContextDep,
    db: SessionDep,
    apply: Annotated[
        bool, Query(description="Replace the channel's model list with the result")
    ] = False,
) -> FetchModelsResult:
    """The provider's `/models` list (and, with `apply`, use it)."""
    return FetchModelsResult(
        models=await ctx.channel_admin.fetch_models(db, channel_id, apply=apply)
    )
