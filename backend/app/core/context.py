"""`AppContext`: everything one app instance owns, built by `create_app` and opened by the lifespan.

Routes reach it through dependencies (`app.core.deps`); services receive the pieces they need as
arguments and never see the context or the request. Things bound to the event loop (database engine,
HTTP client, background tasks) are created in `open()` and released in `close()`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import aiohttp
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.channels import service as channel_service
from app.channels.health import HealthProber, probe_auto_disabled
from app.core.app_secrets import AppSecrets, ConfigError
from app.core.client_ip import ClientIPResolver
from app.core.config import Settings
from app.core.db import create_engine, create_sessionmaker
from app.core.redis import create_redis
from app.core.security import PasswordHasher, SecretBox, TokenCodec
from app.gateway.auth import ApiKeyCache
from app.gateway.breaker import CircuitBreaker
from app.gateway.concurrency import ConcurrencyGate
from app.gateway.registry import ChannelRegistry
from app.gateway.service import Gateway
from app.gateway.upstream import create_session
from app.logs.writer import CallLogWriter
from app.ratelimit.limiter import RateLimiter


@dataclass
class AppContext:
    settings: Settings
    secrets: AppSecrets
    hasher: PasswordHasher
    tokens: TokenCodec
    secret_box: SecretBox
    client_ip: ClientIPResolver
    redis: Redis | None
    limiter: RateLimiter
    api_key_cache: ApiKeyCache
    breaker: CircuitBreaker
    gate: ConcurrencyGate
    shutting_down: bool = False
    # Created by open():
    engine: AsyncEngine = field(init=False, repr=False)
    sessionmaker: async_sessionmaker[AsyncSession] = field(init=False, repr=False)
    http: aiohttp.ClientSession = field(init=False, repr=False)
    registry: ChannelRegistry = field(init=False, repr=False)
    gateway: Gateway = field(init=False, repr=False)
    call_logs: CallLogWriter = field(init=False, repr=False)
    health: HealthProber = field(init=False, repr=False)
    _open: bool = field(default=False, repr=False)

    @classmethod
    def build(cls, settings: Settings, secrets: AppSecrets) -> AppContext:
        redis_url = settings.redis.url.get_secret_value() if settings.redis.url else None
        try:
            client_ip = ClientIPResolver(settings.server.trusted_proxies)
        except ValueError as exc:
            raise ConfigError(f"TRUSTED_PROXIES: {exc}") from None
        redis = create_redis(redis_url) if redis_url else None
        return cls(
            settings=settings,
            secrets=secrets,
            hasher=PasswordHasher(settings.auth),
            tokens=TokenCodec(secrets.signing_key, settings.auth),
            secret_box=SecretBox(secrets.encryption_keys),
            client_ip=client_ip,
            redis=redis,
            limiter=RateLimiter(redis, namespace=settings.redis.key_prefix),
            api_key_cache=ApiKeyCache(settings.gateway.key_cache_seconds),
            breaker=CircuitBreaker(settings.gateway),
            gate=ConcurrencyGate(settings.gateway.llm_concurrency),
        )

    def allow_private_upstreams(self) -> bool:
        return self.settings.gateway.allow_private_upstreams

    def open_database(self) -> AsyncEngine:
        self.engine = create_engine(self.settings)
        self.sessionmaker = create_sessionmaker(self.engine)
        return self.engine

    def start_services(self) -> None:
        """Start what needs a running loop and an open database: HTTP client, gateway, writers."""
        gw = self.settings.gateway
        self.http = create_session(self.allow_private_upstreams)
        self.registry = ChannelRegistry(
            self.sessionmaker, self.secret_box, gw.channel_refresh_seconds
        )
        self.gateway = Gateway(
            settings=gw,
            registry=self.registry,
            breaker=self.breaker,
            gate=self.gate,
            limiter=self.limiter,
            session=lambda: self.http,
            auto_disable=self._auto_disable,
            allow_private=self.allow_private_upstreams,
        )
        self.call_logs = CallLogWriter(self.engine, self.settings.call_log)
        self.call_logs.start()
        self.health = HealthProber(gw.health_probe_interval_seconds, self._probe_channels)
        self.health.start()
        self._open = True

    async def _auto_disable(self, channel_id: int, reason: str, detail: str) -> None:
        await channel_service.auto_disable(self.sessionmaker, channel_id, reason, detail)

    async def _probe_channels(self) -> list[int]:
        enabled = await probe_auto_disabled(
            self.sessionmaker, self.http, self.secret_box, self.allow_private_upstreams()
        )
        if enabled:
            self.channels_changed()
        return enabled

    def channels_changed(self) -> None:
        self.registry.invalidate()

    def credentials_changed(self) -> None:
        """A key was revoked or an account disabled: forget cached key lookups."""
        self.api_key_cache.clear()

    async def close(self) -> None:
        if self._open:
            await self.health.stop()
            await self.call_logs.stop()
            await self.http.close()
            self._open = False
        if self.redis is not None:
            await self.redis.aclose()
        if hasattr(self, "engine"):
            await self.engine.dispose()
