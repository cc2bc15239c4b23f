"""`AppContext`: everything one app instance owns, built by `create_app` and opened by the lifespan.

Routes reach it through dependencies (`app.core.deps`); services receive the pieces they need as
arguments and never see the context or the request.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.core.app_secrets import AppSecrets, ConfigError
from app.core.client_ip import ClientIPResolver
from app.core.config import Settings
from app.core.db import create_engine, create_sessionmaker
from app.core.redis import create_redis
from app.core.security import PasswordHasher, SecretBox, TokenCodec
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
    shutting_down: bool = False
    _engine: AsyncEngine | None = field(default=None, repr=False)
    _sessionmaker: async_sessionmaker[AsyncSession] | None = field(default=None, repr=False)

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
        )

    def open_database(self) -> AsyncEngine:
        self._engine = create_engine(self.settings)
        self._sessionmaker = create_sessionmaker(self._engine)
        return self._engine

    @property
    def engine(self) -> AsyncEngine:
        if self._engine is None:
            raise RuntimeError("the database is not open (is the lifespan running?)")
        return self._engine

    @property
    def sessionmaker(self) -> async_sessionmaker[AsyncSession]:
        if self._sessionmaker is None:
            raise RuntimeError("the database is not open (is the lifespan running?)")
        return self._sessionmaker

    async def close(self) -> None:
        if self.redis is not None:
            await self.redis.aclose()
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None
            self._sessionmaker = None
