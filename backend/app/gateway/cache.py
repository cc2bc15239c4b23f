"""The routable channels, decrypted once and kept in memory.

Reloaded from the database when a channel changes in this process (`invalidate`) and every
`channel_refresh_seconds` (to see changes made by other processes). A channel whose key cannot be
decrypted with the configured keys is switched to auto_disabled with reason `key_undecryptable`;
the others keep working.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.security import SecretBox, UndecryptableError
from app.gateway.dialects import Dialect, dialect_for
from app.gateway.http_client import PreparedRequest
from app.gateway.upstream import Timeouts, prepare_post
from app.gateway.url_guard import IPAddress, literal_ip, upstream_host
from app.models import Channel, ChannelStatus
from app.models.base import utcnow

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RoutableChannel:
    id: int
    name: str
    base_url: str
    api_key: str = field(repr=False)
    served: frozenset[str]
    mapping: Mapping[str, str]
    priority: int
    weight: int
    rpm_limit: int | None
    timeouts: Timeouts
    split_think: bool
    created_at: int
    literal_address: IPAddress | None
    # Built once per channel, not per call.
    headers: dict[str, str] = field(repr=False, hash=False, compare=False)
    dialect: Dialect = field(default_factory=lambda: dialect_for("openai"))
    api_version: str | None = None
    native: frozenset[str] = frozenset()  # the formats it takes as they come (`dialects`)
    _posts: dict[tuple[str, str, bool], PreparedRequest | None] = field(
        default_factory=dict, repr=False, hash=False, compare=False
    )

    def upstream_model(self, public_model: str) -> str:
        return self.mapping.get(public_model, public_model)

    def post(self, path: str, upstream_model: str, stream: bool = False) -> PreparedRequest | None:
        """The POST to `path` for `upstream_model`, encoded once; None if it cannot be sent."""
        by_model, by_stream = self.dialect.url_varies(self.api_version)
        key = (path, upstream_model if by_model else "", stream and by_stream)
        try:
            return self._posts[key]
        except KeyError:
            url = self.dialect.url(self.base_url, self.api_version, path, upstream_model, stream)
            prepared = self._posts[key] = prepare_post(url, self.headers)
            return prepared

    def post_with(
        self, headers: Mapping[str, str], path: str, upstream_model: str, stream: bool
    ) -> PreparedRequest | None:
        """The POST with the client's `headers` added (prepared for this call alone)."""
        url = self.dialect.url(self.base_url, self.api_version, path, upstream_model, stream)
        return prepare_post(url, {**self.headers, **headers})


@dataclass(frozen=True)
class Snapshot:
    # Public model name -> the enabled channels serving it.
    by_model: Mapping[str, tuple[RoutableChannel, ...]]


def to_routable(channel: Channel, api_key: str) -> RoutableChannel:
    timeouts = Timeouts(
        connect=channel.connect_timeout,
        first_byte=channel.first_byte_timeout,
        idle=channel.idle_timeout,
        total=channel.total_timeout,
    )
    dialect = dialect_for(channel.type)
    return RoutableChannel(
        id=channel.id,
        name=channel.name,
        base_url=channel.base_url,
        api_key=api_key,
        served=frozenset(channel.models) | frozenset(channel.model_mapping),
        mapping=dict(channel.model_mapping),
        priority=channel.priority,
        weight=channel.weight,
        rpm_limit=channel.rpm_limit,
        timeouts=timeouts,
        split_think=channel.split_think,
        created_at=int(channel.created_at.timestamp()),
        literal_address=literal_ip(upstream_host(channel.base_url)),
        headers=dialect.headers(api_key),
        dialect=dialect,
        api_version=channel.api_version,
        native=dialect.native_endpoints(channel.responses_api),
    )


class ChannelCache:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        box: SecretBox,
        refresh_seconds: float,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._box = box
        self._refresh_seconds = refresh_seconds
        self._snapshot: Snapshot | None = None
        self._expires_at = 0.0
        self._lock = asyncio.Lock()

    def invalidate(self) -> None:
        """Read the channels again on the next call (from code that cannot wait for it)."""
        self._expires_at = 0.0

    async def reload(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        """Read the channels now."""
        async with self._lock:
            self._expires_at = time.monotonic() + self._refresh_seconds
            self._snapshot = await self._load(sessionmaker)

    async def snapshot(self) -> Snapshot:
        if self._snapshot is not None and time.monotonic() < self._expires_at:
            return self._snapshot
        async with self._lock:
            if self._snapshot is None or time.monotonic() >= self._expires_at:
                self._expires_at = time.monotonic() + self._refresh_seconds
                self._snapshot = await self._load(self._sessionmaker)
        return self._snapshot

    async def _load(self, sessionmaker: async_sessionmaker[AsyncSession]) -> Snapshot:
        async with sessionmaker() as db:
            rows = (
                await db.scalars(select(Channel).where(Channel.status == ChannelStatus.ENABLED))
            ).all()
            routable: list[RoutableChannel] = []
            broken: list[int] = []
            for channel in rows:
                try:
                    api_key = self._box.decrypt(channel.api_key_encrypted)
                except UndecryptableError:
                    broken.append(channel.id)
                    continue
                routable.append(to_routable(channel, api_key))
            if broken:
                logger.error(
                    "Channels %s have keys that ENCRYPTION_KEYS cannot decrypt; disabled them",
                    broken,
                )
                await db.execute(
                    update(Channel)
                    .where(Channel.id.in_(broken))
                    .values(
                        status=ChannelStatus.AUTO_DISABLED,
                        status_reason="key_undecryptable",
                        status_detail="The stored API key cannot be decrypted with the configured "
                        "ENCRYPTION_KEYS. Re-enter the key, or restore the old encryption key.",
                        status_changed_at=utcnow(),
                    )
                )
                await db.commit()
        by_model: dict[str, list[RoutableChannel]] = {}
        for candidate in routable:
            for model in candidate.served:
                by_model.setdefault(model, []).append(candidate)
        return Snapshot(
            by_model={model: tuple(chans) for model, chans in by_model.items()},
        )
