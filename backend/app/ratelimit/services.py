"""The rate-limit domain's services, built together (see `app.composition`)."""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis

from app.ratelimit.admission import Admission
from app.ratelimit.limiter import RateLimiter
from app.ratelimit.slots import ConcurrencySlots
from app.runtime_settings.cache import RuntimeSettingsCache


@dataclass(frozen=True)
class RateLimits:
    limiter: RateLimiter
    slots: ConcurrencySlots
    admission: Admission


def build(redis: Redis | None, prefix: str, runtime: RuntimeSettingsCache) -> RateLimits:
    """In memory without Redis (one process), shared through Redis with it."""
    limiter = RateLimiter(redis, namespace=prefix)
    slots = ConcurrencySlots(redis, namespace=prefix)
    return RateLimits(limiter, slots, Admission(limiter, slots, runtime, redis, prefix))
