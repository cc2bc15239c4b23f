"""A small async facade over `limits` (moving-window algorithm, so no 2× burst at window edges).

With `REDIS_URL` the counters live in Redis and hold across every process; otherwise they live in
this process's memory, where `limits` expires idle entries so memory stays flat.
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


@dataclass(frozen=True)
class LimitStatus:
    allowed: bool
    limit: int
    remaining: int
    reset_after: int  # seconds until a slot frees up (0 when one is free)


class RateLimiter:
    def __init__(self, redis: Redis | None = None, namespace: str = "acgw") -> None:
        """`redis`: the app's shared client (its pool is reused); None keeps counters in memory."""
        if redis is None:
            storage = storage_from_string("async+memory://")
        else:
            storage = storage_from_string(
                "async+redis://",
                implementation="redispy",
                connection_pool=redis.connection_pool,  # type: ignore[arg-type]  # passed to redis-py
                key_prefix=f"{namespace}:rl",
            )
        if not isinstance(storage, Storage):
            raise TypeError("limits did not return an async storage")
        self._storage = storage
        self._strategy = MovingWindowRateLimiter(self._storage)

    @staticmethod
    def _item(limit: int, window_seconds: int) -> RateLimitItemPerSecond:
        return RateLimitItemPerSecond(limit, window_seconds)

    async def _status(self, item: RateLimitItemPerSecond, key: str, allowed: bool) -> LimitStatus:
        stats = await self._strategy.get_window_stats(item, key)
        reset_after = (
            0 if stats.remaining > 0 else max(1, math.ceil(stats.reset_time - time.time()))
        )
        return LimitStatus(allowed, item.amount, stats.remaining, reset_after)

    async def hit(self, key: str, limit: int, window_seconds: int, cost: int = 1) -> LimitStatus:
        """Consume `cost` from the window if it fits; `allowed` says whether it did."""
        item = self._item(limit, window_seconds)
        allowed = await self._strategy.hit(item, key, cost=cost)
        return await self._status(item, key, allowed)

    async def peek(self, key: str, limit: int, window_seconds: int) -> LimitStatus:
        """Whether one more hit would fit, without consuming anything."""
        item = self._item(limit, window_seconds)
        allowed = await self._strategy.test(item, key)
        return await self._status(item, key, allowed)

    async def reset(self, key: str, limit: int, window_seconds: int) -> None:
        await self._strategy.clear(self._item(limit, window_seconds), key)

    async def ping(self) -> bool:
        return bool(await self._storage.check())
