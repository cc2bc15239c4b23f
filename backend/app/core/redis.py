"""The process's one Redis client (when `REDIS_URL` is set), shared by every feature that needs it."""

from __future__ import annotations

from redis.asyncio import BlockingConnectionPool, Redis

from app.core.app_secrets import ConfigError


def create_redis(url: str, max_connections: int = 512, pool_timeout: float = 10.0) -> Redis:
    """A client whose pool waits for a free connection when all are in use: redis-py's default
    pool (100 connections) refuses the 101st at once, which under a burst of calls turned into
    errors."""
    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError("REDIS_URL must start with redis://, rediss:// or unix://")
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=pool_timeout,
        socket_connect_timeout=5,
        health_check_interval=30,
    )
    return Redis.from_pool(pool)
