"""Request-rate limits: one interface, a moving window, two backends.

The moving window counts every request of the last `window` seconds, so — unlike a fixed window —
it never lets 2× the limit through around a window boundary. Without Redis the counters live in this
process's memory (`MovingWindows`, idle keys swept). With `REDIS_URL` they live in Redis through
`limits`' moving window (an atomic Lua script) and hold across every process; there a hit that fits
costs one round trip, and the window's statistics are read only to describe a rejection.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from limits import RateLimitItemPerSecond
from limits.aio.storage import Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string
from redis.asyncio import Redis

from app.ratelimit.memory import MovingWindows


@dataclass(frozen=True)
class Rejection:
    """A request that does not fit: `limit` per window, and when one more would fit."""

    limit: int
    window_seconds: int
    reset_after: int  # seconds, at least 1


def _rejection_in(limit: int, window_seconds: int, wait: float) -> Rejection | None:
    if wait <= 0:
        return None
    return Rejection(limit, window_seconds, max(1, math.ceil(wait)))


class RateLimiter:
    def __init__(self, redis: Redis | None = None, namespace: str = "acgw") -> None:
        """`redis`: the app's shared client (its pool is reused); None keeps counters in memory."""
        self._memory: MovingWindows | None = None
        self._redis = redis
        self._key_prefix = f"{namespace}:rl"
        if redis is None:
            self._memory = MovingWindows()
            return
        storage = storage_from_string(
            "async+redis://",
            implementation="redispy",
            connection_pool=redis.connection_pool,  # type: ignore[arg-type]  # passed to redis-py
            key_prefix=self._key_prefix,
        )
        if not isinstance(storage, Storage):
            raise TypeError("limits did not return an async storage")
        self._strategy = MovingWindowRateLimiter(storage)

    async def _rejection(self, item: RateLimitItemPerSecond, key: str) -> Rejection:
        stats = await self._strategy.get_window_stats(item, key)
        reset_after = max(1, math.ceil(stats.reset_time - time.time()))
        return Rejection(item.amount, item.multiples, reset_after)

    async def hit(
        self, key: str, limit: int, window_seconds: int, cost: int = 1
    ) -> Rejection | None:
        """Consume `cost` from the window if it fits (None); otherwise describe the rejection."""
        if self._memory is not None:
            wait = self._memory.hit(key, limit, window_seconds, cost)
            return _rejection_in(limit, window_seconds, wait)
        item = RateLimitItemPerSecond(limit, window_seconds)
        if await self._strategy.hit(item, key, cost=cost):
            return None
        return await self._rejection(item, key)

    async def peek(self, key: str, limit: int, window_seconds: int) -> Rejection | None:
        """Whether one more hit would fit (None), without consuming anything."""
        if self._memory is not None:
            return _rejection_in(
                limit, window_seconds, self._memory.peek(key, limit, window_seconds)
            )
        item = RateLimitItemPerSecond(limit, window_seconds)
        if await self._strategy.test(item, key):
            return None
        return await self._rejection(item, key)

    async def refund(self, key: str, limit: int, window_seconds: int) -> None:
        """Take back one hit (the newest): it was counted before the outcome was known and turned
        out not to count. The moving window's entries are only times, so which one goes does not
        change the count; the newest is the one least likely to have expired."""
        if self._memory is not None:
            self._memory.refund(key)
            return
        assert self._redis is not None
        item = RateLimitItemPerSecond(limit, window_seconds)
        # `limits` keeps a moving window as a Redis list, newest first, under this name.
        await self._redis.lpop(f"{self._key_prefix}:{item.key_for(key)}")

    async def reset(self, key: str, limit: int, window_seconds: int) -> None:
        if self._memory is not None:
            self._memory.clear(key)
            return
        await self._strategy.clear(RateLimitItemPerSecond(limit, window_seconds), key)
