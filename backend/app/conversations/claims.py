"""Which reply holds a conversation (one at a time), and which reply it ran last.

A reply *claims* its conversation before it starts and releases it when it ends; a second claim
while one is held fails at once (the API answers 409). The last reply is remembered for a while
after it ends so a reloaded page can still re-attach to it and read its end.

In memory (one process) this is two dictionaries, emptied as replies end, so idle conversations
cost nothing. With Redis the claim is a lease (`SET NX PX`), renewed while the reply runs and
released only by its holder; a process that dies frees its conversations when the lease runs out.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol

from redis.asyncio import Redis

# KEYS: claim key, latest-reply key. ARGV: reply id, seconds to remember it.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
if redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('EXPIRE', KEYS[2], ARGV[2]) end
return 1
"""
# KEYS: claim key, latest-reply key. ARGV: reply id, lease in ms.
_RENEW = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return 1
"""


class Claims(Protocol):
    async def claim(self, conversation_id: int, reply_id: str) -> bool: ...

    async def renew(self, conversation_id: int, reply_id: str) -> bool: ...

    async def release(self, conversation_id: int, reply_id: str) -> None: ...

    async def holder(self, conversation_id: int) -> str | None: ...

    async def latest(self, conversation_id: int) -> str | None: ...


class MemoryClaims:
    def __init__(self, keep_seconds: float) -> None:
        self._keep = keep_seconds
        self._held: dict[int, str] = {}
        self._latest: dict[int, tuple[str, float]] = {}  # reply id, remembered until

    async def claim(self, conversation_id: int, reply_id: str) -> bool:
        if conversation_id in self._held:
            return False
        self._held[conversation_id] = reply_id
        self._latest[conversation_id] = (reply_id, float("inf"))
        return True

    async def renew(self, conversation_id: int, reply_id: str) -> bool:
        return self._held.get(conversation_id) == reply_id

    async def release(self, conversation_id: int, reply_id: str) -> None:
        if self._held.get(conversation_id) == reply_id:
            del self._held[conversation_id]
        latest = self._latest.get(conversation_id)
        if latest is not None and latest[0] == reply_id:
            self._latest[conversation_id] = (reply_id, time.monotonic() + self._keep)
            asyncio.get_running_loop().call_later(
                self._keep + 0.1, self._forget, conversation_id, reply_id
            )

    def _forget(self, conversation_id: int, reply_id: str) -> None:
        latest = self._latest.get(conversation_id)
        if latest is not None and latest[0] == reply_id and latest[1] <= time.monotonic():
            del self._latest[conversation_id]

    async def holder(self, conversation_id: int) -> str | None:
        return self._held.get(conversation_id)

    async def latest(self, conversation_id: int) -> str | None:
        latest = self._latest.get(conversation_id)
        if latest is None or latest[1] <= time.monotonic():
            return None
        return latest[0]

    def __len__(self) -> int:
        return len(self._held) + len(self._latest)


class RedisClaims:
    def __init__(
        self, redis: Redis, prefix: str, lease_seconds: float, keep_seconds: float
    ) -> None:
        self._redis = redis
        self._prefix = f"{prefix}:chat"
        self._lease_ms = int(lease_seconds * 1000)
        self._keep = max(1, int(keep_seconds))
        self._release = redis.register_script(_RELEASE)
        self._renew = redis.register_script(_RENEW)

    def _keys(self, conversation_id: int) -> list[str]:
        return [
            f"{self._prefix}:claim:{conversation_id}",
            f"{self._prefix}:latest:{conversation_id}",
        ]

    async def claim(self, conversation_id: int, reply_id: str) -> bool:
        claim_key, latest_key = self._keys(conversation_id)
        if not await self._redis.set(claim_key, reply_id, nx=True, px=self._lease_ms):
            return False
        await self._redis.set(latest_key, reply_id, px=self._lease_ms)
        return True

    async def renew(self, conversation_id: int, reply_id: str) -> bool:
        keys = self._keys(conversation_id)
        return bool(await self._renew(keys=keys, args=[reply_id, self._lease_ms]))

    async def release(self, conversation_id: int, reply_id: str) -> None:
        await self._release(keys=self._keys(conversation_id), args=[reply_id, self._keep])

    async def holder(self, conversation_id: int) -> str | None:
        return _text(await self._redis.get(self._keys(conversation_id)[0]))

    async def latest(self, conversation_id: int) -> str | None:
        return _text(await self._redis.get(self._keys(conversation_id)[1]))


def _text(value: bytes | str | None) -> str | None:
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else value
