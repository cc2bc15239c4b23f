"""Login throttling that slows guessing without letting anyone lock a victim out.

Two moving windows count *failed* attempts:
- per client IP, across all accounts (stops one address from spraying many accounts);
- per (account, client IP) (stops one address from hammering one account).
There is deliberately no per-account limit across all addresses: anyone could use it to lock the real
owner out. The owner, signing in from their own address, is never held back by someone else's failures.
A successful sign-in clears that address's counter for that account.
"""

from __future__ import annotations

from app.ratelimit.limiter import RateLimiter
from app.ratelimit.responses import rate_limited
from app.runtime_settings.values import RuntimeValues


class LoginThrottle:
    def __init__(self, limiter: RateLimiter, settings: RuntimeValues) -> None:
        self._limiter = limiter
        self._window = settings.login_window_seconds
        self._per_ip = settings.login_max_failures_per_ip
        self._per_account_ip = settings.login_max_failures_per_account_ip

    @staticmethod
    def _ip_key(ip: str) -> str:
        return f"login-fail:ip:{ip}"

    @staticmethod
    def _account_key(account: str, ip: str) -> str:
        return f"login-fail:acct:{account}:{ip}"

    async def check(self, account: str, ip: str) -> None:
        """Raise 429 if this address may not try (this account) right now."""
        for key, limit in (
            (self._ip_key(ip), self._per_ip),
            (self._account_key(account, ip), self._per_account_ip),
        ):
            rejection = await self._limiter.peek(key, limit, self._window)
            if rejection is not None:
                raise rate_limited(
                    "Too many failed sign-in attempts. Try again later.",
                    "login_throttled",
                    limit,
                    rejection.reset_after,
                )

    async def record_failure(self, account: str, ip: str) -> None:
        await self._limiter.hit(self._ip_key(ip), self._per_ip, self._window)
        await self._limiter.hit(self._account_key(account, ip), self._per_account_ip, self._window)

    async def record_success(self, account: str, ip: str) -> None:
        await self._limiter.reset(
            self._account_key(account, ip), self._per_account_ip, self._window
        )


async def check_registration(limiter: RateLimiter, settings: RuntimeValues, ip: str) -> None:
    limit = settings.register_max_per_ip_per_hour
    rejection = await limiter.hit(f"register:ip:{ip}", limit, 3600)
    if rejection is not None:
        raise rate_limited(
            "Too many accounts created from this address. Try again later.",
            "register_throttled",
            limit,
            rejection.reset_after,
        )
