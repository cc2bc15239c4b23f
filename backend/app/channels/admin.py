"""What an admin does with channels, as one service: the router only translates HTTP.

It holds what the work needs besides the request's session — the key box, the gateway's default
timeouts, the HTTP client, whether private upstreams are allowed — and announces every change
through `channel_service` (`core.events.announce`: once the transaction has committed, the channel
cache here and on the other processes reloads), so no route can forget to.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncSession

from app.channels import service as channel_service
from app.channels.schemas import (
    ChannelCreate,
    ChannelRead,
    ChannelTestResult,
    ChannelUpdate,
    FetchModelsRequest,
)
from app.core.config import GatewaySettings
from app.core.errors import UnprocessableError
from app.core.events import announce
from app.core.pagination import PageParams
from app.core.security import SecretBox
from app.gateway.breaker import CircuitBreaker
from app.gateway.http_client import HttpClient
from app.models import Channel, ChannelStatus


class ChannelAdmin:
    def __init__(
        self,
        *,
        box: SecretBox,
        settings: GatewaySettings,
        breaker: CircuitBreaker,
        http: Callable[[], HttpClient],
        allow_private: Callable[[], bool],
    ) -> None:
        self._box = box
        self._settings = settings
        self._breaker = breaker
        self._http = http
        self._allow_private = allow_private

    def read(self, channel: Channel) -> ChannelRead:
        read = ChannelRead.model_validate(channel)
        read.breaker_open = self._breaker.open_models(channel.id)
        return read

    async def list_page(
        self,
        db: AsyncSession,
        page: PageParams,
        *,
        query: str | None,
        status: ChannelStatus | None,
        model: str | None,
    ) -> tuple[list[ChannelRead], int]:
        rows, total = await channel_service.list_channels(
            db, page, query=query, status=status, model=model
        )
        return [self.read(channel) for channel in rows], total

    async def get(self, db: AsyncSession, channel_id: int) -> ChannelRead:
        return self.read(await channel_service.get(db, channel_id))

    async def create(self, db: AsyncSession, body: ChannelCreate) -> ChannelRead:
        channel = await channel_service.create(
            db, self._box, self._settings, body, allow_private=self._allow_private()
        )
        return ChannelRead.model_validate(channel)

    async def update(self, db: AsyncSession, channel_id: int, body: ChannelUpdate) -> ChannelRead:
        channel = await channel_service.get(db, channel_id)
        updated = await channel_service.update(
            db, self._box, self._settings, channel, body, allow_private=self._allow_private()
        )
        return ChannelRead.model_validate(updated)

    async def set_enabled(self, db: AsyncSession, channel_id: int, enabled: bool) -> ChannelRead:
        channel = await channel_service.get(db, channel_id)
        changed = await channel_service.set_enabled(db, channel, enabled)
        return ChannelRead.model_validate(changed)

    async def delete(self, db: AsyncSession, channel_id: int) -> None:
        await channel_service.delete(db, await channel_service.get(db, channel_id))

    async def test(self, db: AsyncSession, channel_id: int, model: str | None) -> ChannelTestResult:
        """One small real request through the channel (even a disabled one), recorded on it."""
        channel = await channel_service.get(db, channel_id)
        model = model or next(iter(channel.models or channel.model_mapping), None)
        if model is None:
            raise UnprocessableError(
                "The channel has no models to test with", code="no_models", param="model"
            )
        api_key = channel_service.decrypt_key(self._box, channel)
        result = await channel_service.probe(
            self._http(), channel, api_key, model, self._allow_private()
        )
        await channel_service.record_test(db, channel, result)
        return result

    async def fetch_models(self, db: AsyncSession, channel_id: int, *, apply: bool) -> list[str]:
        """The provider's model list; with `apply`, it becomes the channel's."""
        channel = await channel_service.get(db, channel_id)
        api_key = channel_service.decrypt_key(self._box, channel)
        models = await channel_service.fetch_models(
            self._http(),
            channel.base_url,
            api_key,
            channel_service.timeouts_of(channel),
            self._allow_private(),
            kind=channel.type,
            api_version=channel.api_version,
        )
        if apply:
            channel.models = models
            await db.flush()
            announce(db, "channels")
        return models

    async def fetch_models_for(self, body: FetchModelsRequest) -> list[str]:
        """An upstream's model list before its channel is saved (the default timeouts)."""
        return await channel_service.fetch_models(
            self._http(),
            body.base_url,
            body.api_key.get_secret_value(),
            channel_service.default_timeouts(self._settings),
            self._allow_private(),
            kind=body.type,
            api_version=body.api_version,
        )
