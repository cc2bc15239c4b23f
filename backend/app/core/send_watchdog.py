"""Responses whose client has stopped reading are cut off after a send timeout.

uvicorn writes a response only as fast as its client reads: once the socket's buffers are full,
`send` waits. That backpressure is what keeps memory bounded (a stream reads its upstream no faster
than it writes to its client), but a client that never reads again would hold the stream, its
upstream call and its concurrency slots for ever. Every `send` that is waiting is registered here;
a sweep once a second aborts the connection of any send that has waited longer than the runtime
setting `send_timeout_seconds`. The app then sees an ordinary disconnect: the upstream call is
closed and the call is logged as `client_gone`.

Registering costs a set insert and removal per send. Aborting needs the server's transport, which
uvicorn's `send` carries; under a server that does not expose it nothing is watched.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from starlette.types import Message, Send

logger = logging.getLogger(__name__)

SWEEP_SECONDS = 1.0


class _Waiting:
    __slots__ = ("abort", "request_id", "since")

    def __init__(self, abort: Callable[[], None], request_id: str) -> None:
        self.abort = abort
        self.request_id = request_id
        self.since = 0.0


class SendWatchdog:
    def __init__(self, timeout: Callable[[], float]) -> None:
        self._timeout = timeout
        self._waiting: set[_Waiting] = set()
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._waiting)

    def guard(self, send: Send, request_id: str) -> Send:
        """`send`, watched: if one call waits longer than the timeout, the connection is aborted."""
        transport = getattr(getattr(send, "__self__", None), "transport", None)
        abort = getattr(transport, "abort", None)
        if abort is None:
            return send
        entry = _Waiting(abort, request_id)
        waiting = self._waiting
        clock = asyncio.get_running_loop().time

        async def watched(message: Message) -> None:
            entry.since = clock()
            waiting.add(entry)
            try:
                await send(message)
            finally:
                waiting.discard(entry)

        return watched

    async def sweep(self) -> int:
        """Abort the connections whose send has waited too long; how many it aborted."""
        timeout = self._timeout()
        if timeout <= 0 or not self._waiting:
            return 0
        now = asyncio.get_running_loop().time()
        stalled = [entry for entry in self._waiting if now - entry.since >= timeout]
        for entry in stalled:
            self._waiting.discard(entry)
            logger.info(
                "Dropped a response whose client read nothing for %.0f s (request %s)",
                timeout,
                entry.request_id,
            )
            entry.abort()
        self.dropped += len(stalled)
        return len(stalled)
