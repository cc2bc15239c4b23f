"""`ClientGuard`: what is decided about a request from its client address alone, before anything else.

1. The blacklist: a listed address gets 403 on every path (the SPA included); the hit is counted.
2. The per-address request rate on `/v1`, the chat API and the sign-in/registration endpoints:
   429 with `Retry-After` and `X-RateLimit-*`. A model call (`deferred_paths`) is counted by the
   call's admission instead, in the same round trip as its other limits (or, refused before it
   got there, by `count`) — the same window either way.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from app.core.errors import AppError, ForbiddenError
from app.ipfilter.attempts import AttemptRecorder
from app.ipfilter.cache import BlockListCache
from app.ratelimit.limiter import Rejection
from app.ratelimit.responses import rpm_exceeded
from app.runtime_settings.cache import RuntimeSettingsCache

RATE_LIMITED_PREFIXES = ("/v1/", "/api/auth/", "/api/conversations", "/api/chat")
BLOCKED_MESSAGE = "Access from your network address is blocked."


CountAddress = Callable[[str], Awaitable[Rejection | None]]


@dataclass
class ClientGuard:
    blocklist: BlockListCache
    count_address: CountAddress  # one request from an address (`Admission.count_address`)
    runtime: RuntimeSettingsCache
    recorder: AttemptRecorder | None = None
    deferred_paths: frozenset[str] = frozenset()

    async def count(self, client_ip: str) -> AppError | None:
        """Count a request against its address's window; the 429 if it is over."""
        rejection = await self.count_address(client_ip)
        if rejection is not None:
            return rpm_exceeded("your network address", "ip_rate_limited", rejection)
        return None

    async def check(self, client_ip: str, path: str, user_agent: bytes) -> AppError | None:
        """The error to answer with, or None to let the request through."""
        rule = self.blocklist.match(client_ip)
        if rule is not None:
            if self.recorder is not None:
                self.recorder.record(client_ip, rule, path, user_agent.decode("latin-1"))
            return ForbiddenError(BLOCKED_MESSAGE, code="ip_blocked")
        if (
            self.runtime.current.ip_rpm
            and path.startswith(RATE_LIMITED_PREFIXES)
            and path.rstrip("/") not in self.deferred_paths
        ):
            return await self.count(client_ip)
        return None
