"""Who is calling `/v1`: an API key (`Bearer sk-…`, cached briefly) or a signed-in user's JWT.

Key lookups are cached for `key_cache_seconds` so the hot path does not touch the database; expiry is
still checked on every call, and revoking a key or disabling a user clears the cache at once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.access import principal as access
from app.core.errors import UnauthorizedError
from app.core.security import TokenCodec, bearer_token, hash_api_key, looks_like_api_key
from app.gateway.caller import Caller
from app.keys import service as key_service
from app.models.base import utcnow
from app.ratelimit.admission import CallerLimits


@dataclass(frozen=True)
class _Cached:
    caller: Caller
    key_expires_at: datetime | None
    cached_until: float


class ApiKeyCache:
    def __init__(self, ttl_seconds: float, max_entries: int = 100_000) -> None:
        self._ttl = ttl_seconds
        self._max = max_entries
        self._entries: dict[str, _Cached] = {}

    def get(self, key_hash: str) -> _Cached | None:
        entry = self._entries.get(key_hash)
        if entry is None or entry.cached_until < time.monotonic():
            return None
        return entry

    def put(self, key_hash: str, caller: Caller, key_expires_at: datetime | None) -> None:
        if self._ttl <= 0:
            return
        if len(self._entries) >= self._max:
            self._entries.clear()
        self._entries[key_hash] = _Cached(caller, key_expires_at, time.monotonic() + self._ttl)

    def clear(self) -> None:
        """Forget everything (a key was revoked or a user disabled)."""
        self._entries.clear()


MISSING_KEY = "Missing API key: send 'Authorization: Bearer sk-…' (create a key under API keys in the web app)"


async def authenticate(
    authorization: str | None,
    *,
    cache: ApiKeyCache,
    sessionmaker: async_sessionmaker[AsyncSession],
    tokens: TokenCodec,
) -> Caller:
    token = bearer_token(authorization)
    if token is None:
        raise UnauthorizedError(MISSING_KEY, code="missing_api_key")
    if looks_like_api_key(token):
        key_hash = hash_api_key(token)
        cached = cache.get(key_hash)
        if cached is not None:
            if cached.key_expires_at is not None and cached.key_expires_at <= utcnow():
                raise UnauthorizedError("This API key has expired", code="api_key_expired")
            return cached.caller
        async with sessionmaker() as db:
            key, user = await key_service.authenticate(db, token)
        caller = Caller(
            user_id=user.id,
            key_id=key.id,
            key_models=frozenset(key.models) if key.models is not None else None,
            limits=CallerLimits.of(user, key),
            confirmed=user.is_admin or user.email_verified,
        )
        cache.put(key_hash, caller, key.expires_at)
        return caller
    async with sessionmaker() as db:
        principal = await access.authenticate(db, tokens, token)
    user = principal.user
    return Caller(
        user_id=user.id,
        limits=CallerLimits.of(user),
        confirmed=user.is_admin or user.email_verified,
    )
