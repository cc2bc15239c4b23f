"""The channel health probe (run periodically): re-enables channels the gateway disabled itself, once they work again.

Only channels switched off automatically for a bad key or exhausted quota are probed; an admin's
disable is never undone, and an undecryptable key needs an admin.
"""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.channels import service as channel_service
from app.core.db import commit
from app.core.security import SecretBox, UndecryptableError
from app.gateway.http_client import HttpClient
from app.models import Channel, ChannelStatus

logger = logging.getLogger(__name__)


async def probe_auto_disabled(
    sessionmaker: async_sessionmaker[AsyncSession],
    client: HttpClient,
    box: SecretBox,
    allow_private: bool,
) -> list[int]:
    """Probe every auto-disabled channel once; returns the ids that were re-enabled."""
    async with sessionmaker() as db:
        rows = (
            await db.scalars(
                select(Channel).where(
                    Channel.status == ChannelStatus.AUTO_DISABLED,
                    Channel.status_reason.in_(channel_service.AUTO_REASONS),
                )
            )
        ).all()
    enabled: list[int] = []
    for channel in rows:
        model = next(iter(channel.models or channel.model_mapping), None)
        if model is None:
            continue
        try:
            api_key = box.decrypt(channel.api_key_encrypted)
        except UndecryptableError:
            continue
        result = await channel_service.probe(client, channel, api_key, model, allow_private)
        async with sessionmaker() as db:
            fresh = await db.get(Channel, channel.id)
            if fresh is None:
                continue
            await channel_service.record_test(db, fresh, result)
            if result.ok and fresh.status is ChannelStatus.AUTO_DISABLED:
                await channel_service.set_enabled(db, fresh, True)
                enabled.append(fresh.id)
                logger.info("Channel %s (#%d) works again; re-enabled", fresh.name, fresh.id)
            await commit(db)  # a re-enabled channel is announced (channel_service.set_enabled)
    return enabled
