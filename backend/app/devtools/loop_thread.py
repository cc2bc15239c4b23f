"""Closing an event loop that ran in a background thread the way `asyncio.run` closes its own.

A loop stopped with `loop.stop()` (or after `run_until_complete` returns) can still hold tasks that
were never cancelled and transports whose `close()` scheduled the final callback for the next
iteration, and connections nobody closed (a peer still connected when its server stopped).
Closing it there leaves those sockets open until the collector finds them, which reports them as
unclosed somewhere unrelated. `finish_loop` cancels what is left, closes every connection still
open, runs the loop until the closing callbacks have run, then closes it. `LoopThread` is a loop on
a daemon thread that is closed that way when it stops.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

# Closing a transport takes one loop iteration; an SSL or an aiohttp one can take a few more.
_SETTLE_ITERATIONS = 5


def close_transports(loop: asyncio.AbstractEventLoop) -> None:
    """Close every socket transport still open on `loop` (a selector loop keeps them by
    descriptor; other loops are left alone). Their last callbacks run at the next iteration."""
    transports = getattr(loop, "_transports", None)
    if transports is None:
        return
    for transport in list(transports.values()):
        if transport is not None and not transport.is_closing():
            transport.close()


async def close_server(server: asyncio.Server) -> None:
    """Stop `server` listening without stranding a connection it has just accepted.

    asyncio hands an accepted connection over in a task of its own. If the server is closed
    before that task runs, the task fails (`Server._attach` asserts the server is open) and the
    accepted socket is left to the collector, which reports it as unclosed in whatever code runs
    then. So: stop accepting, let the connections already accepted be handed over, then close.
    Those connections are still open; the server's shutdown or `finish_loop` closes them.
    """
    loop = asyncio.get_running_loop()
    for sock in server.sockets:
        loop.remove_reader(sock.fileno())
    await asyncio.sleep(0)  # the hand-over tasks were queued ahead of this one
    server.close()


def finish_loop(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel the loop's remaining tasks, let closing transports finish, close the loop.

    Call it on the thread that ran the loop, after the loop has stopped.
    """
    try:
        pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
        for task in pending:
            task.cancel()
        if pending:
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        close_transports(loop)
        for _ in range(_SETTLE_ITERATIONS):
            loop.run_until_complete(asyncio.sleep(0))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.run_until_complete(loop.shutdown_default_executor())
    finally:
        loop.close()


class LoopThread:
    """An event loop running on a daemon thread, for servers the tests start in-process.

    `stop` closes the servers `listen` opened with `close_server`, then the loop with
    `finish_loop`: nothing it held is left to the collector.
    """

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._servers: list[asyncio.Server] = []

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_forever()
        finally:
            finish_loop(self.loop)

    def start(self) -> None:
        self._thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = 10) -> T:
        """Run `coroutine` on the loop and wait for its result (from another thread)."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=timeout)

    def listen(
        self, protocol_factory: Callable[[], asyncio.BaseProtocol], host: str, port: int
    ) -> asyncio.Server:
        """Serve `protocol_factory` on host:port (0: a free one) until `stop`."""
        server = self.run(self.loop.create_server(protocol_factory, host, port))
        self._servers.append(server)
        return server

    def stop(
        self, cleanup: Callable[[], Awaitable[None]] | None = None, timeout: float = 10
    ) -> None:
        """Stop listening, run `cleanup` (a server's own shutdown of its open connections),
        close the loop and wait for the thread."""
        if not self._thread.is_alive():
            return
        self.run(self._stop_listening(cleanup), timeout)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=timeout)

    async def _stop_listening(self, cleanup: Callable[[], Awaitable[None]] | None) -> None:
        while self._servers:
            await close_server(self._servers.pop())
        if cleanup is not None:
            await cleanup()
