"""Concurrency caps: how many calls one user (or one API key) may have running at once.

In memory, a counter per key, removed when it drops to zero. With Redis, a sorted set per key whose
members are leases scored by their expiry: acquiring (an atomic Lua script) first drops expired
leases, then adds one if the set is below the cap. Each process renews its live leases every
`RENEW_SECONDS`, so a lease outlives a long stream, while the leases of a process that died expire
within `LEASE_SECONDS` and do not hold slots forever.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import secrets
import time
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import RedisError

from app.core.tasks import TaskSet, cancel_and_wait

logger = logging.getLogger(__name__)

LEASE_SECONDS = 90
RENEW_SECONDS = 30

_ACQUIRE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then
  return 0
end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[4])
redis.call('EXPIRE', KEYS[1], ARGV[5])
return 1
"""


@dataclass(frozen=True)
class Lease:
    key: str
    member: str


class ConcurrencySlots:
    def __init__(self, redis: Redis | None = None, namespace: str = "acgw") -> None:
        self._redis = redis
        self._prefix = f"{namespace}:slots:"
        self._counts: dict[str, int] = {}
        self._live: dict[Lease, None] = {}
        self._origin = f"{os.getpid():x}-{secrets.token_hex(4)}"
        self._ids = itertools.count(1)
        self._acquire_script = redis.register_script(_ACQUIRE) if redis is not None else None
        self._renewer: asyncio.Task[None] | None = None
        self._releases = TaskSet()

    def redis_key(self, key: str) -> str:
        return self._prefix + key

    def new_member(self) -> str:
        return f"{self._origin}-{next(self._ids)}"

    def adopt(self, redis_key: str, member: str) -> Lease:
        """Track a lease added to Redis elsewhere (by the admission script): renew and release it."""
        lease = Lease(redis_key, member)
        self._live[lease] = None
        self._ensure_renewer()
        return lease

    def in_use(self, key: str) -> int:
        """This process's count (memory backend)."""
        return self._counts.get(key, 0)

    async def acquire(self, key: str, limit: int) -> Lease | None:
        """Take a slot under `key` if fewer than `limit` are held; None when at the cap."""
        if self._acquire_script is None:
            held = self._counts.get(key, 0)
            if held >= limit:
                return None
            self._counts[key] = held + 1
            return Lease(key, "")
        lease = Lease(self.redis_key(key), self.new_member())
        now = time.time()
        granted = await self._acquire_script(
            keys=[lease.key],
            args=[now, now + LEASE_SECONDS, limit, lease.member, LEASE_SECONDS * 2],
        )
        if not granted:
            return None
        return self.adopt(lease.key, lease.member)

    def forget(self, lease: Lease) -> None:
        """Stop renewing a lease that something else takes out of Redis (a hold's settlement)."""
        self._live.pop(lease, None)

    def release(self, lease: Lease) -> None:
        if self._redis is None:
            held = self._counts.get(lease.key, 0) - 1
            if held > 0:
                self._counts[lease.key] = held
            else:
                self._counts.pop(lease.key, None)
            return
        self._live.pop(lease, None)
        self._releases.spawn(self._remove(lease))

    async def _remove(self, lease: Lease) -> None:
        assert self._redis is not None
        try:
            await self._redis.zrem(lease.key, lease.member)
        except RedisError as exc:  # the lease expires on its own
            logger.warning("Could not release a concurrency slot in Redis: %s", exc)

    def _ensure_renewer(self) -> None:
        if self._renewer is None or self._renewer.done():
            self._renewer = asyncio.get_running_loop().create_task(self._renew_forever())

    async def _renew_forever(self) -> None:
        assert self._redis is not None
        while self._live:
            await asyncio.sleep(RENEW_SECONDS)
            leases = list(self._live)
            if not leases:
                break
            expires = time.time() + LEASE_SECONDS
            try:
                async with self._redis.pipeline(transaction=False) as pipe:
                    for lease in leases:
                        pipe.zadd(lease.key, {lease.member: expires}, xx=True)
                        pipe.expire(lease.key, LEASE_SECONDS * 2)
                    await pipe.execute()
            except RedisError as exc:
                logger.warning("Could not renew concurrency leases in Redis: %s", exc)

    async def settle(self) -> None:
        """Wait until every release so far has reached Redis."""
        await self._releases.drain()

    async def close(self) -> None:
        await cancel_and_wait(self._renewer)
        await self.settle()
