"""Whether a caller may start one more model call: per-key and per-user limits.

Checked for every model call (`/v1` and the web chat) before routing: the API key's own RPM and
concurrency caps (when it has them), then the user's (their override, else the runtime default;
0 means no limit). A call that passes holds one concurrency slot per cap until it ends.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from app.ratelimit.limiter import RateLimiter
from app.ratelimit.responses import rate_limited, rpm_exceeded
from app.ratelimit.slots import ConcurrencySlots, Lease
from app.runtime_settings.store import RuntimeSettingsStore

# Seconds a caller at their concurrency cap is told to wait: a running call may end any moment.
STREAMS_RETRY_AFTER = 1


@dataclass(frozen=True)
class CallerLimits:
    """Per-user overrides (None: the runtime default) and the key's own caps (None: none)."""

    user_rpm: int | None = None
    user_streams: int | None = None
    key_rpm: int | None = None
    key_streams: int | None = None


class Admission:
    def __init__(
        self, limiter: RateLimiter, slots: ConcurrencySlots, runtime: RuntimeSettingsStore
    ) -> None:
        self._limiter = limiter
        self._slots = slots
        self._runtime = runtime

    async def admit(
        self, user_id: int, key_id: int | None, limits: CallerLimits
    ) -> Callable[[], None]:
        """Count the call against every limit that applies; returns what frees its slots.

        Raises a 429 (`RateLimitedError`) naming the limit that stopped it.
        """
        values = self._runtime.current
        user_rpm = limits.user_rpm if limits.user_rpm is not None else values.default_user_rpm
        user_streams = (
            limits.user_streams
            if limits.user_streams is not None
            else values.default_user_concurrent_streams
        )
        if key_id is not None and limits.key_rpm:
            rejection = await self._limiter.hit(f"rpm:key:{key_id}", limits.key_rpm, 60)
            if rejection is not None:
                raise rpm_exceeded("this API key", "key_rate_limited", rejection)
        if user_rpm:
            rejection = await self._limiter.hit(f"rpm:user:{user_id}", user_rpm, 60)
            if rejection is not None:
                raise rpm_exceeded("your account", "user_rate_limited", rejection)
        leases: list[Lease] = []
        try:
            if key_id is not None and limits.key_streams:
                leases.append(
                    await self._slot(
                        f"key:{key_id}", limits.key_streams, "this API key", "key_concurrency"
                    )
                )
            if user_streams:
                leases.append(
                    await self._slot(
                        f"user:{user_id}", user_streams, "your account", "user_concurrency"
                    )
                )
        except BaseException:
            self._free(leases)
            raise
        if not leases:
            return _nothing
        return lambda: self._free(leases)

    async def _slot(self, key: str, limit: int, who: str, code: str) -> Lease:
        lease = await self._slots.acquire(key, limit)
        if lease is None:
            raise rate_limited(
                f"Too many calls running at once for {who} (at most {limit}). "
                "Wait for one to finish.",
                code,
                limit,
                STREAMS_RETRY_AFTER,
            )
        return lease

    def _free(self, leases: list[Lease]) -> None:
        for lease in leases:
            self._slots.release(lease)
        leases.clear()


def _nothing() -> None:
    return None
