"""The 429 a client gets when a limit stops it: `Retry-After` and `X-RateLimit-*` headers."""

from __future__ import annotations

from app.core.errors import RateLimitedError
from app.ratelimit.limiter import Rejection


def rate_limited(message: str, code: str, limit: int, reset_after: int) -> RateLimitedError:
    reset_after = max(1, reset_after)
    return RateLimitedError(
        message,
        code=code,
        retry_after=reset_after,
        headers={
            "X-RateLimit-Limit": str(limit),
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": str(reset_after),
        },
    )


def rpm_exceeded(who: str, code: str, rejection: Rejection) -> RateLimitedError:
    return rate_limited(
        f"Rate limit reached for {who}: {rejection.limit} requests per minute. "
        f"Try again in {rejection.reset_after} s.",
        code,
        rejection.limit,
        rejection.reset_after,
    )
