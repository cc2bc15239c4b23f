"""`ConcurrencyGate`: a semaphore whose size can change at run time, with a bounded wait."""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque


class GateTimeoutError(Exception):
    """No slot freed up within the wait."""


class ConcurrencyGate:
    def __init__(self, size: int) -> None:
        self._size = size
        self._in_use = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def size(self) -> int:
        return self._size

    @property
    def in_use(self) -> int:
        return self._in_use

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    def resize(self, size: int) -> None:
        self._size = max(1, size)
        self._wake()

    def _wake(self) -> None:
        while self._waiters and self._in_use < self._size:
            waiter = self._waiters.popleft()
            if waiter.done():
                # Its wait was cancelled (timeout, client gone) and its task has not run yet to
                # take it out of the queue: the slot goes to the next one.
                continue
            self._in_use += 1
            waiter.set_result(None)

    async def acquire(self, wait_seconds: float) -> None:
        """Take a slot, waiting at most `wait_seconds` (first come, first served)."""
        if self._in_use < self._size and not self._waiters:
            self._in_use += 1
            return
        if wait_seconds <= 0:
            raise GateTimeoutError
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout(wait_seconds):
                await waiter
        except BaseException as exc:
            if waiter.done() and not waiter.cancelled():
                self.release()  # the slot arrived just as we gave up: hand it on
            else:
                waiter.cancel()
                with contextlib.suppress(ValueError):
                    self._waiters.remove(waiter)
            if isinstance(exc, TimeoutError):
                raise GateTimeoutError from None
            raise

    def release(self) -> None:
        self._in_use -= 1
        self._wake()
