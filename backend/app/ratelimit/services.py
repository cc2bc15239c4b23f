"""The rate-limit domain's services, built together (see `app.composition`)."""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis

from app.billing.ledger import MemoryLedger
from app.ratelimit.admission import Admission
from app.ratelimit.limiter import RateLimiter
from app.ratelimit.slots import ConcurrencySlots
from app.runtime_settings.cache import RuntimeSettingsCache


@dataclass(frozen=True)
class RateLimits:
    limiter: RateLimiter
    slots: ConcurrencySlots
    admission: Admission


def build(
    redis: Redis | None,
    prefix: str,
    runtime: RuntimeSettingsCache,
    ledger: MemoryLedger | None = None,
) -> RateLimits:
    """In memory without Redis (one process), shared through Redis with it. `ledger`: where
    budgets are held without Redis (the one `billing.budgets` settles on)."""
    limiter = RateLimiter(redis, namespace=prefix)
    slots = ConcurrencySlots(redis, namespace=prefix)
    admission = Admission(limiter, slots, runtime, redis, prefix, ledger)
    return RateLimits(limiter, slots, admission)
