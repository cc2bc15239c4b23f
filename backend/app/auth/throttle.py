"""Throttling of every secret a client can guess: passwords, two-factor codes, recovery codes.

Two moving windows count *failed* attempts:
- per client IP, across all accounts (stops one address from spraying many accounts);
- per (account, kind of secret, client IP) (stops one address from hammering one account).
  Passwords and second factors (codes, recovery codes) are counted apart, so a right password
  — which someone guessing codes may well have — does not wipe out their failed codes.
There is deliberately no per-account limit across all addresses: anyone could use it to lock the real
owner out. The owner, signing in from their own address, is never held back by someone else's failures.

An attempt is counted *before* its secret is checked, atomically (one moving-window hit in memory
or in Redis), and refused if it does not fit: checking first and counting after let 60 concurrent
guesses for one account all be verified against a limit of 5. A success takes its count back and
clears that address's counter for that account, so only failures remain counted.
"""

from __future__ import annotations

from typing import Literal

from app.core.runtime_values import RuntimeValues
from app.ratelimit.limiter import RateLimiter
from app.ratelimit.responses import rate_limited

SecretKind = Literal["password", "second_factor"]


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
    def _account_key(account: str, ip: str, kind: SecretKind) -> str:
        prefix = "" if kind == "password" else "2fa:"
        return f"login-fail:acct:{prefix}{account}:{ip}"

    async def attempt(self, account: str, ip: str, kind: SecretKind = "password") -> None:
        """Count one attempt at `account`'s secret from `ip`, before it is checked; 429 if this
        address may not try (this account) right now. Call `succeeded` if the secret was right."""
        ip_key, account_key = self._ip_key(ip), self._account_key(account, ip, kind)
        rejection = await self._limiter.hit(ip_key, self._per_ip, self._window)
        limit = self._per_ip
        if rejection is None:
            rejection = await self._limiter.hit(account_key, self._per_account_ip, self._window)
            limit = self._per_account_ip
            if rejection is not None:  # not tried after all: the address's count goes back
                await self._limiter.refund(ip_key, self._per_ip, self._window)
        if rejection is not None:
            raise rate_limited(
                "Too many failed sign-in attempts. Try again later.",
                "login_throttled",
                limit,
                rejection.reset_after,
            )

    async def succeeded(self, account: str, ip: str, kind: SecretKind = "password") -> None:
        """The secret was right: this attempt does not count, nor do earlier failures of this kind
        for this account from this address."""
        await self._limiter.refund(self._ip_key(ip), self._per_ip, self._window)
        await self._limiter.reset(
            self._account_key(account, ip, kind), self._per_account_ip, self._window
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
