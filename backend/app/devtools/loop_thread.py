"""Closing an event loop that ran in a background thread the way `asyncio.run` closes its own.

A loop stopped with `loop.stop()` (or after `run_until_complete` returns) can still hold tasks that
were never cancelled and transports whose `close()` scheduled the final callback for the next
iteration, and connections nobody closed (a peer still connected when its server stopped).
Closing it there leaves those sockets open until the collector finds them, which reports them as
unclosed somewhere unrelated. `finish_loop` cancels what is left, closes every connection still
open, runs the loop until the closing callbacks have run, then closes it.
"""

from __future__ import annotations

import asyncio

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
