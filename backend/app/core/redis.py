"""The process's one Redis client (when `REDIS_URL` is set), shared by every feature that needs it."""

from __future__ import annotations

from redis.asyncio import Redis

from app.core.app_secrets import ConfigError


def create_redis(url: str) -> Redis:
    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError("REDIS_URL must start with redis://, rediss:// or unix://")
    return Redis.from_url(url, socket_connect_timeout=5, health_check_interval=30)
