"""Admin: upstream channels (`/api/admin/channels`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, status

from app.access.dependencies import require_admin
from app.channels import service as channel_service
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
from app.core.deps import SessionDep, after_commit
from app.core.errors import UnprocessableError
from app.core.ids import RowId
from app.core.pagination import Page, PageDep
from app.gateway.upstream import Timeouts
from app.models import Channel, ChannelStatus

router = APIRouter(
    prefix="/api/admin/channels", tags=["admin-channels"], dependencies=[Depends(require_admin)]
)


def _read(ctx: ChannelsContextDep, channel: Channel) -> ChannelRead:
    read = ChannelRead.model_validate(channel)
    read.breaker_open = ctx.breaker.open_models(channel.id)
    return read


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
    rows, total = await channel_service.list_channels(
        db, page, query=q, status=channel_status, model=model
    )
    return page.result([_read(ctx, c) for c in rows], total)


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_channel(
    body: ChannelCreate, ctx: ChannelsContextDep, db: SessionDep
) -> ChannelRead:
    """Add a channel: an upstream base URL, its key (stored encrypted, shown masked) and the models
    it serves, with optional model mapping, priority, weight, rate limit, timeouts, `<think>`
    splitting, tags and notes."""
    channel = await channel_service.create(
        db, ctx.secret_box, ctx.settings.gateway, body, allow_private=ctx.allow_private_upstreams()
    )
    after_commit(db, ctx.channels_changed)
    return ChannelRead.model_validate(channel)


@router.post("/fetch-models")
async def fetch_models_for_new_channel(
    body: FetchModelsRequest, ctx: ChannelsContextDep
) -> FetchModelsResult:
    """List an upstream's models before the channel is saved."""
    gw = ctx.settings.gateway
    timeouts = Timeouts(
        gw.connect_timeout, gw.first_byte_timeout, gw.idle_timeout, gw.total_timeout
    )
    models = await channel_service.fetch_models(
        ctx.http,
        body.base_url,
        body.api_key.get_secret_value(),
        timeouts,
        ctx.allow_private_upstreams(),
    )
    return FetchModelsResult(models=models)


@router.get("/{channel_id}")
async def get_channel(channel_id: RowId, ctx: ChannelsContextDep, db: SessionDep) -> ChannelRead:
    """One channel (key masked), with the models whose circuit breaker is open."""
    return _read(ctx, await channel_service.get(db, channel_id))


@router.patch("/{channel_id}")
async def update_channel(
    channel_id: RowId, body: ChannelUpdate, ctx: ChannelsContextDep, db: SessionDep
) -> ChannelRead:
    """Change a channel; a new `api_key` replaces the stored one, an omitted one keeps it."""
    channel = await channel_service.get(db, channel_id)
    updated = await channel_service.update(
        db,
        ctx.secret_box,
        ctx.settings.gateway,
        channel,
        body,
        allow_private=ctx.allow_private_upstreams(),
    )
    after_commit(db, ctx.channels_changed)
    return ChannelRead.model_validate(updated)


@router.post("/{channel_id}/enable")
async def enable_channel(channel_id: RowId, ctx: ChannelsContextDep, db: SessionDep) -> ChannelRead:
    """Switch a channel on (also one switched off automatically after auth or quota errors)."""
    channel = await channel_service.set_enabled(db, await channel_service.get(db, channel_id), True)
    after_commit(db, ctx.channels_changed)
    return ChannelRead.model_validate(channel)


@router.post("/{channel_id}/disable")
async def disable_channel(
    channel_id: RowId, ctx: ChannelsContextDep, db: SessionDep
) -> ChannelRead:
    """Switch a channel off: no call is routed to it until it is switched on again."""
    channel = await channel_service.set_enabled(
        db, await channel_service.get(db, channel_id), False
    )
    after_commit(db, ctx.channels_changed)
    return ChannelRead.model_validate(channel)


@router.delete("/{channel_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_channel(channel_id: RowId, ctx: ChannelsContextDep, db: SessionDep) -> None:
    """Delete a channel; its call-log rows keep its id."""
    await channel_service.delete(db, await channel_service.get(db, channel_id))
    after_commit(db, ctx.channels_changed)


@router.post("/{channel_id}/test")
async def test_channel(
    channel_id: RowId, body: ChannelTestRequest, ctx: ChannelsContextDep, db: SessionDep
) -> ChannelTestResult:
    """Send one small real request through this channel (even if it is disabled)."""
    channel = await channel_service.get(db, channel_id)
    model = body.model or next(iter(channel.models or channel.model_mapping), None)
    if model is None:
        raise UnprocessableError(
            "The channel has no models to test with", code="no_models", param="model"
        )
    api_key = channel_service.decrypt_key(ctx.secret_box, channel)
    result = await channel_service.probe(
        ctx.http, channel, api_key, model, ctx.allow_private_upstreams()
    )
    await channel_service.record_test(db, channel, result)
    return result


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
    channel = await channel_service.get(db, channel_id)
    api_key = channel_service.decrypt_key(ctx.secret_box, channel)
    models = await channel_service.fetch_models(
        ctx.http,
        channel.base_url,
        api_key,
        channel_service.timeouts_of(channel),
        ctx.allow_private_upstreams(),
    )
    if apply:
        channel.models = models
        await db.flush()
        after_commit(db, ctx.channels_changed)
    return FetchModelsResult(models=models)
