"""Budgets and balances that hold under concurrency: reserve the worst case, settle the real cost.

A call first reserves what it can cost at most against every claim on it (the user's budget for
the period, the key's, the user's prepaid balance); all or nothing. When it ends, its reservation
becomes its real cost. A claim refuses a reservation that would take spent + reserved past its
limit, so concurrent calls can never spend more than the limit together — unlike checking the
budget first and charging after.

The reservation itself is made by the admission (`ratelimit.admission`), together with the
rate and concurrency checks. `MemoryLedger` (one process): its check and booking run without
yielding, so they are atomic. With Redis (any number of processes) the admission's Lua script
reserves (`RESERVE_CHECK`), and `RedisLedger` settles and credits, one script each.
Either starts a claim from the database the first time it is used (`Claim.load`: the period's
spend so far, or the balance left) and keeps it from then on; Redis forgets a period's claim
after the period. A reservation not settled (its process died) lapses after `HOLD_SECONDS`.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import secrets
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis

from app.billing.money import nano_text
from app.core.errors import AppError

# Longer than any call can run (a channel's total timeout is at most an hour).
HOLD_SECONDS = 3900


class InsufficientQuotaError(AppError):
    status_code = 429
    code = "insufficient_quota"


@dataclass(frozen=True, slots=True)
class Claim:
    """One limit a call is held to. `limit`: a budget's cap in nano-units; None for a balance,
    whose amount the ledger keeps (loaded, then credited by top-ups)."""

    key: str
    limit: int | None
    what: str  # for the refusal, e.g. "your account's monthly budget"
    load: Callable[[], Awaitable[int]] = field(compare=False)
    forget_at: float = 0.0  # Unix time after which the claim is of no use (0: never)


@dataclass(frozen=True, slots=True)
class Reservation:
    """What a call reserves: `amount` (nano-units) against each of `claims`; `output_tokens`:
    the answer's length that covers when the request set no limit (0: it did)."""

    claims: Sequence[Claim]
    amount: int
    output_tokens: int = 0


@dataclass(slots=True)
class Hold:
    claims: Sequence[Claim]
    amount: int
    member: str
    settled: bool = False
    output_tokens: int = 0  # the answer's length the amount covers (a longer stream is cut)
    # Redis sets holding this call's concurrency leases (under `member`): emptied by the same
    # script that settles the hold, so a call's end is one round trip.
    slot_keys: list[str] = field(default_factory=list)

    @property
    def from_balance(self) -> bool:
        """Whether the call is paid from a prepaid balance."""
        return any(claim.limit is None for claim in self.claims)


def refusal(claim: Claim, left: int) -> InsufficientQuotaError:
    left_text = nano_text(max(left, 0))
    return InsufficientQuotaError(
        f"This call could cost more than what is left of {claim.what} ({left_text}). "
        "Ask an administrator for more, or wait for the next period.",
        headers={"X-Quota-Left": left_text},
    )


class _Members:
    def __init__(self) -> None:
        self._origin = f"{os.getpid():x}{secrets.token_hex(3)}"
        self._ids = itertools.count(1)

    def new(self) -> str:
        return f"{self._origin}.{next(self._ids):x}"


class MemoryLedger:
    def __init__(self) -> None:
        self._spent: dict[str, int] = {}
        self._limits: dict[str, int] = {}  # balances: the amount loaded, plus credits
        self._reserved: dict[str, int] = {}
        self._forget: dict[str, float] = {}
        self._loading: dict[str, asyncio.Future[None]] = {}
        self._members = _Members()
        self._calls = 0

    async def _ensure(self, claim: Claim) -> None:
        key = claim.key
        while key not in self._spent:
            pending = self._loading.get(key)
            if pending is not None:
                await pending
                continue
            future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._loading[key] = future
            try:
                loaded = await claim.load()
                if claim.limit is None:
                    self._spent[key], self._limits[key] = 0, loaded
                else:
                    self._spent[key] = loaded
                self._forget[key] = claim.forget_at
            finally:
                del self._loading[key]
                future.set_result(None)

    async def load(self, claims: Sequence[Claim]) -> None:
        """Start every claim not used yet (may wait for the database)."""
        for claim in claims:
            await self._ensure(claim)

    def check(self, claims: Sequence[Claim], amount: int) -> None:
        """Raise the refusal of the first claim that cannot take `amount` (claims loaded)."""
        for claim in claims:
            key = claim.key
            cap = claim.limit if claim.limit is not None else self._limits[key]
            used = self._spent[key] + self._reserved.get(key, 0)
            if used + amount > cap:
                raise refusal(claim, cap - used)

    def book(self, claims: Sequence[Claim], amount: int) -> Hold:
        """Reserve `amount` against every claim (checked, with nothing yielding in between)."""
        for claim in claims:
            self._reserved[claim.key] = self._reserved.get(claim.key, 0) + amount
        self._calls += 1
        if self._calls % 10_000 == 0:
            self._sweep()
        return Hold(claims, amount, self._members.new())

    def settle(self, hold: Hold, cost: int) -> Coroutine[Any, Any, None] | None:
        """The call ended having cost `cost` (0 if it failed before any answer). In memory this
        is done at once (nothing to await)."""
        if hold.settled:
            return None
        hold.settled = True
        for claim in hold.claims:
            key = claim.key
            self._reserved[key] = self._reserved.get(key, 0) - hold.amount
            if key in self._spent:
                self._spent[key] += cost
        return None

    async def credit(self, key: str, amount: int) -> None:
        """A balance grew (or shrank) by `amount` (a top-up, a redeemed code, an adjustment)."""
        if key in self._limits:
            self._limits[key] += amount

    def _sweep(self) -> None:
        now = time.time()
        for key, when in list(self._forget.items()):
            if when and when < now and not self._reserved.get(key):
                for table in (self._spent, self._limits, self._reserved, self._forget):
                    table.pop(key, None)


# A claim's hash holds `spent`, a balance's `limit`, and `r:<member>` = "amount|expiry" per live
# reservation. `reserve_check` drops lapsed reservations and answers what is left if `amount`
# does not fit (nil if it does); the admission script (`ratelimit.admission`) uses it too.
RESERVE_CHECK = """
local function reserve_check(key, limit, now, amount)
  local fields = redis.call('HGETALL', key)
  local spent, cap, reserved = 0, 0, 0
  for j = 1, #fields, 2 do
    local name, value = fields[j], fields[j + 1]
    if name == 'spent' then
      spent = tonumber(value)
    elseif name == 'limit' then
      cap = tonumber(value)
    else
      local bar = string.find(value, '|', 1, true)
      if tonumber(string.sub(value, bar + 1)) < now then
        redis.call('HDEL', key, name)
      else
        reserved = reserved + tonumber(string.sub(value, 1, bar - 1))
      end
    end
  end
  if limit ~= '' then cap = tonumber(limit) end
  if spent + reserved + amount > cap then return cap - spent - reserved end
  return nil
end
"""
# KEYS: the claims' hashes, then the sets holding the call's concurrency leases. ARGV: member,
# cost, claim count.
_SETTLE = """
local claims = tonumber(ARGV[3])
for i = 1, claims do
  if redis.call('HDEL', KEYS[i], 'r:' .. ARGV[1]) == 1 then
    redis.call('HINCRBY', KEYS[i], 'spent', ARGV[2])
  end
end
for i = claims + 1, #KEYS do
  redis.call('ZREM', KEYS[i], ARGV[1])
end
return 0
"""
_CREDIT = """
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HINCRBY', KEYS[1], 'limit', ARGV[1]) end
return 0
"""


class RedisLedger:
    def __init__(self, redis: Redis, namespace: str = "acgw") -> None:
        self._prefix = f"{namespace}:ledger:"
        self._settle = redis.register_script(_SETTLE)
        self._credit = redis.register_script(_CREDIT)
        self._members = _Members()

    def settle(self, hold: Hold, cost: int) -> Coroutine[Any, Any, None] | None:
        if hold.settled:
            return None
        hold.settled = True
        keys = [self._prefix + claim.key for claim in hold.claims] + hold.slot_keys
        return self._settle_in_redis(keys, hold.member, cost, len(hold.claims))

    async def _settle_in_redis(self, keys: list[str], member: str, cost: int, claims: int) -> None:
        await self._settle(keys=keys, args=[member, cost, claims])

    async def credit(self, key: str, amount: int) -> None:
        await self._credit(keys=[self._prefix + key], args=[amount])


Ledger = MemoryLedger | RedisLedger
