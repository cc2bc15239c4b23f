"""Whether a caller may start one more model call: the address's, the key's and the user's limits,
and their budgets.

Checked for every model call (`/v1` and the web chat) before routing: the client address's request
rate (for `/v1`; the guard counts it for every other path), the API key's own RPM and concurrency
caps (when it has them), the user's (their override, else the runtime default; 0 means no limit),
and the reservation of the call's worst case against its budgets and balance (`billing.ledger`).
All or nothing: a call refused by one limit is not counted against the others.

In memory the checks run back to back without yielding, so they are atomic. With Redis they are
one Lua script — one round trip per call however many limits apply — and the call's end (its
slots given back, its real cost settled) is one more.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

from redis.asyncio import Redis

from app.billing.budgets import Budget
from app.billing.ledger import (
    HOLD_SECONDS,
    RESERVE_CHECK,
    Hold,
    MemoryLedger,
    Reservation,
    refusal,
)
from app.core.errors import RateLimitedError
from app.models import ApiKey, User
from app.ratelimit.limiter import RateLimiter, Rejection
from app.ratelimit.responses import rate_limited, rpm_exceeded
from app.ratelimit.slots import LEASE_SECONDS, ConcurrencySlots, Lease
from app.runtime_settings.cache import RuntimeSettingsCache

# Seconds a caller at their concurrency cap is told to wait: a running call may end any moment.
STREAMS_RETRY_AFTER = 1
WINDOW_SECONDS = 60

# KEYS: rate keys, then slot keys, then budget claims. ARGV: now, rate count, slot count, lease
# expiry, lease member, lease key TTL, then a limit per rate key, a limit per slot key, then the
# claim count, the amount to reserve and the reservation's expiry, then per claim its limit, its
# loaded value and when Redis may forget it (see `billing.ledger`).
# Rate keys are lists of hit times, newest first, trimmed to the limit: the window is full when the
# limit-th newest hit is still inside it. Slot keys are sorted sets of leases scored by expiry.
# Answers {0} (admitted), {1, i, ms} (rate i is full), {2, j} (slot j is full), {3, k} (claim k
# must be loaded first) or {4, k, left} (claim k cannot take the reservation).
_ADMIT = (
    """
local now = tonumber(ARGV[1])
local rates, slots = tonumber(ARGV[2]), tonumber(ARGV[3])
local at = 6 + rates + slots
local claims = tonumber(ARGV[at + 1])
local amount, hold_expiry = tonumber(ARGV[at + 2]), ARGV[at + 3]
local first_claim = rates + slots
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
for k = 1, claims do
  local key = KEYS[first_claim + k]
  local limit, loaded = ARGV[at + 1 + k * 3], ARGV[at + 2 + k * 3]
  if redis.call('EXISTS', key) == 0 then
    if loaded == '' then return {3, k} end
    if limit == '' then
      redis.call('HSET', key, 'spent', 0, 'limit', loaded)
    else
      redis.call('HSET', key, 'spent', loaded)
    end
    local forget = tonumber(ARGV[at + 3 + k * 3])
    if forget > 0 then redis.call('EXPIREAT', key, forget) end
  end
"""
    + """
  local left = reserve_check(key, limit, now, amount)
  if left then return {4, k, tostring(left)} end
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
for k = 1, claims do
  redis.call('HSET', KEYS[first_claim + k], 'r:' .. ARGV[5], amount .. '|' .. hold_expiry)
end
return {0}
"""
)
_ADMIT = RESERVE_CHECK + _ADMIT

# One address's request window, for the paths the guard counts (KEYS: the window; ARGV: now,
# limit). Answers 0, or the milliseconds until one more fits.
_HIT = """
local now, limit = tonumber(ARGV[1]), tonumber(ARGV[2])
local oldest = redis.call('LINDEX', KEYS[1], limit - 1)
if oldest and tonumber(oldest) > now - 60 then
  return math.ceil((tonumber(oldest) + 60 - now) * 1000)
end
redis.call('LPUSH', KEYS[1], ARGV[1])
redis.call('LTRIM', KEYS[1], 0, limit - 1)
redis.call('EXPIRE', KEYS[1], 61)
return 0
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


@dataclass
class Ticket:
    """What an admitted call holds until it ends: concurrency slots, and its budget `hold`."""

    leases: list[Lease] = field(default_factory=list)
    hold: Hold | None = None
    _admission: Admission | None = field(default=None, repr=False)

    def release(self) -> None:
        """Give the slots back. With Redis and a hold, the hold's settlement takes them out of
        Redis in the same round trip (`billing.ledger`); here they only stop being renewed."""
        if self._admission is not None and self.leases:
            self._admission.release(self.leases, settled_with=self.hold)
            self.leases = []


NOTHING = Ticket()


class Admission:
    def __init__(
        self,
        limiter: RateLimiter,
        slots: ConcurrencySlots,
        runtime: RuntimeSettingsCache,
        redis: Redis | None = None,
        namespace: str = "acgw",
        ledger: MemoryLedger | None = None,
    ) -> None:
        self._limiter = limiter
        self._slots = slots
        self._runtime = runtime
        self._prefix = f"{namespace}:adm:"
        self._ledger_prefix = f"{namespace}:ledger:"
        self._script = redis.register_script(_ADMIT) if redis is not None else None
        self._hit = redis.register_script(_HIT) if redis is not None else None
        # Budgets without Redis (one process); with Redis they are in the admission script.
        self.memory_ledger = ledger if ledger is not None else MemoryLedger()

    def _checks(
        self, user_id: int, key_id: int | None, limits: CallerLimits, client_ip: str | None
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
        if client_ip is not None:
            rates.insert(0, _Check(f"ip:{client_ip}", values.ip_rpm, ADDRESS, "ip_rate_limited"))
        return [c for c in rates if c.limit > 0], [c for c in slots if c.limit > 0]

    async def admit(
        self,
        user_id: int,
        key_id: int | None,
        limits: CallerLimits,
        *,
        client_ip: str | None = None,
        budget: Reservation | None = None,
    ) -> Ticket:
        """Count the call against every limit that applies (`client_ip`: the address's window
        too, for `/v1`) and reserve its `budget`; returns what it holds.

        Raises a 429 naming the limit that stopped it (`insufficient_quota` for a budget).
        """
        rates, slots = self._checks(user_id, key_id, limits, client_ip)
        claims = budget.claims if budget is not None else ()
        if not rates and not slots and not claims:
            return NOTHING
        if self._script is not None:
            ticket = await self._admit_redis(rates, slots, budget)
        else:
            ticket = await self._admit_memory(rates, slots, budget)
        if ticket.hold is not None and budget is not None:
            ticket.hold.output_tokens = budget.output_tokens
        return ticket

    async def count_address(self, client_ip: str) -> Rejection | None:
        """One request from `client_ip` on a rate-limited path the admission does not see."""
        limit = self._runtime.current.ip_rpm
        if not limit:
            return None
        if self._hit is None:
            return await self._limiter.hit(f"rpm:ip:{client_ip}", limit, WINDOW_SECONDS)
        waited = int(
            await self._hit(keys=[f"{self._prefix}rpm:ip:{client_ip}"], args=[time.time(), limit])
        )
        if not waited:
            return None
        return Rejection(limit, WINDOW_SECONDS, max(1, math.ceil(waited / 1000)))

    async def _admit_memory(
        self, rates: list[_Check], slots: list[_Check], budget: Reservation | None
    ) -> Ticket:
        ledger = self.memory_ledger
        if budget is not None:
            await ledger.load(budget.claims)  # may wait for the database, before any check
        for check in rates:
            rejection = await self._limiter.peek(f"rpm:{check.key}", check.limit, WINDOW_SECONDS)
            if rejection is not None:
                raise rpm_exceeded(check.who, check.code, rejection)
        if budget is not None:
            ledger.check(budget.claims, budget.amount)
        leases: list[Lease] = []
        for check in slots:
            lease = await self._slots.acquire(check.key, check.limit)
            if lease is None:
                self._free(leases)
                raise _too_many_running(check)
            leases.append(lease)
        for check in rates:
            await self._limiter.hit(f"rpm:{check.key}", check.limit, WINDOW_SECONDS)
        hold = ledger.book(budget.claims, budget.amount) if budget is not None else None
        return Ticket(leases, hold, self)

    async def _admit_redis(
        self, rates: list[_Check], slots: list[_Check], budget: Reservation | None
    ) -> Ticket:
        assert self._script is not None
        member = self._slots.new_member()
        keys = [f"{self._prefix}rpm:{c.key}" for c in rates]
        keys += [self._slots.redis_key(c.key) for c in slots]
        claims = budget.claims if budget is not None else ()
        keys += [self._ledger_prefix + claim.key for claim in claims]
        loaded: dict[int, int] = {}
        while True:
            now = time.time()
            args: list[float | int | str] = [
                now,
                len(rates),
                len(slots),
                now + LEASE_SECONDS,
                member,
                LEASE_SECONDS * 2,
            ]
            args += [c.limit for c in rates] + [c.limit for c in slots]
            args += [len(claims), budget.amount if budget else 0, now + HOLD_SECONDS]
            for index, claim in enumerate(claims):
                args += [
                    "" if claim.limit is None else claim.limit,
                    loaded.get(index, ""),
                    int(claim.forget_at),
                ]
            outcome = await self._script(keys=keys, args=args)
            kind = int(outcome[0])
            if kind == 3:  # a budget used for the first time this period: start it, then retry
                index = int(outcome[1]) - 1
                loaded[index] = await claims[index].load()
                continue
            break
        if kind == 1:
            check = rates[int(outcome[1]) - 1]
            wait = max(1, math.ceil(int(outcome[2]) / 1000))
            raise rpm_exceeded(check.who, check.code, Rejection(check.limit, WINDOW_SECONDS, wait))
        if kind == 2:
            raise _too_many_running(slots[int(outcome[1]) - 1])
        if kind == 4:
            raise refusal(claims[int(outcome[1]) - 1], int(outcome[2]))
        slot_keys = keys[len(rates) : len(rates) + len(slots)]
        leases = [self._slots.adopt(key, member) for key in slot_keys]
        hold = None
        if budget is not None and claims:
            hold = Hold(claims, budget.amount, member, slot_keys=slot_keys)
        return Ticket(leases, hold, self)

    def release(self, leases: list[Lease], settled_with: Hold | None = None) -> None:
        if settled_with is not None and self._script is not None:
            for lease in leases:  # removed from Redis with the hold's settlement
                self._slots.forget(lease)
            return
        self._free(leases)

    def _free(self, leases: list[Lease]) -> None:
        for lease in leases:
            self._slots.release(lease)
        leases.clear()


ADDRESS = "your network address"


def _too_many_running(check: _Check) -> RateLimitedError:
    return rate_limited(
        f"Too many calls running at once for {check.who} (at most {check.limit}). "
        "Wait for one to finish.",
        check.code,
        check.limit,
        STREAMS_RETRY_AFTER,
    )
