"""The web chat's services, built together (see `app.composition`): the replies and the turns
that start them. With Redis, conversation holds and reply events are shared between processes."""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.conversations.chat import ChatTurns
from app.conversations.claims import Claims, MemoryClaims, RedisClaims
from app.conversations.replies import ReplyManager
from app.core.config import ChatSettings
from app.core.events import ChangeBus
from app.gateway.cache import ChannelCache
from app.gateway.calls import ModelCalls
from app.runtime_settings.cache import RuntimeSettingsCache


@dataclass(frozen=True)
class ChatServices:
    replies: ReplyManager
    chat: ChatTurns


def _claims(settings: ChatSettings, redis: Redis | None, prefix: str) -> Claims:
    if redis is None:
        return MemoryClaims(settings.replay_keep_seconds)
    return RedisClaims(redis, prefix, settings.lock_lease_seconds, settings.replay_keep_seconds)


def build(
    *,
    settings: ChatSettings,
    calls: ModelCalls,
    channels: ChannelCache,
    sessionmaker: async_sessionmaker[AsyncSession],
    runtime: RuntimeSettingsCache,
    bus: ChangeBus,
    redis: Redis | None,
    prefix: str,
) -> ChatServices:
    replies = ReplyManager(
        calls=calls,
        sessionmaker=sessionmaker,
        runtime=runtime,
        claims=_claims(settings, redis, prefix),
        bus=bus,
        settings=settings,
        redis=redis,
        prefix=prefix,
    )
    chat = ChatTurns(
        sessionmaker=sessionmaker,
        replies=replies,
        registry=channels,
        runtime=runtime,
        settings=settings,
    )
    return ChatServices(replies, chat)
