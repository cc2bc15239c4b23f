"""Whether a caller may start one more model call: per-key and per-user limits.

Checked for every model call (`/v1` and the web chat) before routing: the API key's own RPM and
concurrency caps (when it has them), then the user's (their override, else the runtime default;
0 means no limit). All or nothing: a call refused by one limit is not counted against the others.
A call that passes holds one concurrency slot per cap until it ends.

In memory the checks run back to back without yielding, so they are atomic. With Redis they run as
one Lua script — one round trip per call however many limits apply.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from redis.asyncio import Redis

from app.billing.budgets import Budget
from app.core.errors import RateLimitedError
from app.models import ApiKey, User
from app.ratelimit.limiter import RateLimiter, Rejection
from app.ratelimit.responses import rate_limited, rpm_exceeded
from app.ratelimit.slots import LEASE_SECONDS, ConcurrencySlots, Lease
from app.runtime_settings.cache import RuntimeSettingsCache

# Seconds a caller at their concurrency cap is told to wait: a running call may end any moment.
STREAMS_RETRY_AFTER = 1
WINDOW_SECONDS = 60

# KEYS: rate keys, then slot keys. ARGV: now, rate count, slot count, lease expiry, lease member,
# lease key TTL, then a limit per rate key, then a limit per slot key.
# Rate keys are lists of hit times, newest first, trimmed to the limit: the window is full when the
# limit-th newest hit is still inside it. Slot keys are sorted sets of leases scored by expiry.
_ADMIT = """
local now = tonumber(ARGV[1])
local rates, slots = tonumber(ARGV[2]), tonumber(ARGV[3])
for i = 1, rates do
  local limit = tonumber(ARGV[6 + i])
  local oldest = redis.call('LINDEX', KEYS[i], limit - 1)
  if oldest and tonumber(oldest) > now - 60 then
    return {1, i, math.ceil((tonumber(oldest) + 60 - now) * 1000)}
  end
end
for j = 1, slots do
  local key = KEYS[rates + j]
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  if redis.call('ZCARD', key) >= tonumber(ARGV[6 + rates + j]) then
    return {2, j, 0}
  end
end
for i = 1, rates do
  redis.call('LPUSH', KEYS[i], ARGV[1])
  redis.call('LTRIM', KEYS[i], 0, tonumber(ARGV[6 + i]) - 1)
  redis.call('EXPIRE', KEYS[i], 61)
end
for j = 1, slots do
  redis.call('ZADD', KEYS[rates + j], ARGV[4], ARGV[5])
  redis.call('EXPIRE', KEYS[rates + j], ARGV[6])
end
return {0}
"""


@dataclass(frozen=True)
class CallerLimits:
    """Per-user overrides (None: the runtime default) and the key's own caps (None: none); the
    user's and the key's budgets, and whether the user pays from a prepaid balance."""

    user_rpm: int | None = None
    user_streams: int | None = None
    key_rpm: int | None = None
    key_streams: int | None = None
    user_budget: Budget | None = None
    key_budget: Budget | None = None
    balance: bool = False

    @classmethod
    def of(cls, user: User, key: ApiKey | None = None) -> CallerLimits:
        return cls(
            user_rpm=user.rpm_limit,
            user_streams=user.concurrent_streams_limit,
            key_rpm=key.rpm_limit if key is not None else None,
            key_streams=key.concurrent_streams_limit if key is not None else None,
            user_budget=Budget.of(user.budget_nano, user.budget_period),
            key_budget=Budget.of(key.budget_nano, key.budget_period) if key is not None else None,
            balance=user.balance_nano is not None,
        )


@dataclass(frozen=True)
class _Check:
    key: str
    limit: int
    who: str
    code: str


class Admission:
    def __init__(
        self,
        limiter: RateLimiter,
        slots: ConcurrencySlots,
        runtime: RuntimeSettingsCache,
        redis: Redis | None = None,
        namespace: str = "acgw",
    ) -> None:
        self._limiter = limiter
        self._slots = slots
        self._runtime = runtime
        self._prefix = f"{namespace}:adm:"
        self._script = redis.register_script(_ADMIT) if redis is not None else None

    def _checks(
        self, user_id: int, key_id: int | None, limits: CallerLimits
    ) -> tuple[list[_Check], list[_Check]]:
        values = self._runtime.current
        user_rpm = limits.user_rpm if limits.user_rpm is not None else values.default_user_rpm
        user_streams = (
            limits.user_streams
            if limits.user_streams is not None
            else values.default_user_concurrent_streams
        )
        key, user = f"key:{key_id}", f"user:{user_id}"
        rates = [
            _Check(key, limits.key_rpm or 0, "this API key", "key_rate_limited"),
            _Check(user, user_rpm, "your account", "user_rate_limited"),
        ]
        slots = [
            _Check(key, limits.key_streams or 0, "this API key", "key_concurrency"),
            _Check(user, user_streams, "your account", "user_concurrency"),
        ]
        if key_id is None:
            rates, slots = rates[1:], slots[1:]
        return [c for c in rates if c.limit > 0], [c for c in slots if c.limit > 0]

    async def admit(
        self, user_id: int, key_id: int | None, limits: CallerLimits
    ) -> Callable[[], None]:
        """Count the call against every limit that applies; returns what frees its slots.

        Raises a 429 (`RateLimitedError`) naming the limit that stopped it.
        """
        rates, slots = self._checks(user_id, key_id, limits)
        if not rates and not slots:
            return _nothing
        if self._script is not None:
            leases = await self._admit_redis(rates, slots)
        else:
            leases = await self._admit_memory(rates, slots)
        if not leases:
            return _nothing
        return lambda: self._free(leases)

    async def _admit_memory(self, rates: list[_Check], slots: list[_Check]) -> list[Lease]:
        for check in rates:
            rejection = await self._limiter.peek(f"rpm:{check.key}", check.limit, WINDOW_SECONDS)
            if rejection is not None:
                raise rpm_exceeded(check.who, check.code, rejection)
        leases: list[Lease] = []
        for check in slots:
            lease = await self._slots.acquire(check.key, check.limit)
            if lease is None:
                self._free(leases)
                raise _too_many_running(check)
            leases.append(lease)
        for check in rates:
            await self._limiter.hit(f"rpm:{check.key}", check.limit, WINDOW_SECONDS)
        return leases

    async def _admit_redis(self, rates: list[_Check], slots: list[_Check]) -> list[Lease]:
        assert self._script is not None
        now = time.time()
        member = self._slots.new_member()
        keys = [f"{self._prefix}rpm:{c.key}" for c in rates]
        keys += [self._slots.redis_key(c.key) for c in slots]
        args: list[float | int | str] = [
            now,
            len(rates),
            len(slots),
            now + LEASE_SECONDS,
            member,
            LEASE_SECONDS * 2,
        ]
        args += [c.limit for c in rates] + [c.limit for c in slots]
        outcome = await self._script(keys=keys, args=args)
        kind = int(outcome[0])
        if kind == 1:
            check = rates[int(outcome[1]) - 1]
            wait = max(1, math.ceil(int(outcome[2]) / 1000))
            raise rpm_exceeded(check.who, check.code, Rejection(check.limit, WINDOW_SECONDS, wait))
        if kind == 2:
            raise _too_many_running(slots[int(outcome[1]) - 1])
        return [self._slots.adopt(key, member) for key in keys[len(rates) :]]

    def _free(self, leases: list[Lease]) -> None:
        for lease in leases:
            self._slots.release(lease)
        leases.clear()


def _too_many_running(check: _Check) -> RateLimitedError:
    return rate_limited(
        f"Too many calls running at once for {check.who} (at most {check.limit}). "
        "Wait for one to finish.",
        check.code,
        check.limit,
        STREAMS_RETRY_AFTER,
    )


def _nothing() -> None:
    return None
