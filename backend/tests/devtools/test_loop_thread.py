"""A loop run in a background thread closes like `asyncio.run`: nothing left open behind it."""

from __future__ import annotations

import asyncio
import gc
import socket
import threading
import warnings
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from app.devtools.loop_thread import LoopThread, close_server, finish_loop


def _run_and_stop(
    close: Callable[[asyncio.AbstractEventLoop], None], *, leave_open: bool = False
) -> list[str]:
    """Open a loopback connection on a thread's loop, close it (unless `leave_open`: a peer
    still connected when its server stops) and stop the loop in one step."""
    loop = asyncio.new_event_loop()
    started = threading.Event()
    held: dict[str, object] = {}
    accepted: list[asyncio.StreamWriter] = []

    async def setup() -> None:
        connected = asyncio.Event()

        def on_connect(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            accepted.append(writer)
            connected.set()

        server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        _reader, writer = await asyncio.open_connection("127.0.0.1", port)
        await connected.wait()
        held["server"], held["writer"] = server, writer

        async def forever() -> None:
            await asyncio.Event().wait()

        held["task"] = asyncio.get_running_loop().create_task(forever())
        started.set()

    def close_and_stop() -> None:
        # The transport's last callback is scheduled for the next iteration, which never comes
        # unless the loop is run again after it stops.
        writer = held.pop("writer")
        assert isinstance(writer, asyncio.StreamWriter)
        if leave_open:
            held["open"] = (writer, accepted.pop())
        else:
            writer.close()
            accepted.pop().close()
        server = held.pop("server")
        assert isinstance(server, asyncio.Server)
        server.close()
        loop.stop()

    def run() -> None:
        asyncio.set_event_loop(loop)
        held["setup"] = loop.create_task(setup())
        try:
            loop.run_forever()
        finally:
            close(loop)

    thread = threading.Thread(target=run, daemon=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        thread.start()
        assert started.wait(10)
        loop.call_soon_threadsafe(close_and_stop)
        thread.join(10)
        held.clear()
        accepted.clear()
        gc.collect()
    assert loop.is_closed()
    return [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_closing_a_stopped_loop_directly_leaves_the_transport_open() -> None:
    """The fault `finish_loop` exists for, shown so the next test is known to be able to fail."""
    leaks = _run_and_stop(lambda loop: loop.close())
    assert any("unclosed transport" in leak for leak in leaks), leaks


def test_finish_loop_lets_closing_transports_finish_and_cancels_what_is_left() -> None:
    assert _run_and_stop(finish_loop) == []


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_connection_left_open_leaks_when_the_loop_is_closed_directly() -> None:
    leaks = _run_and_stop(lambda loop: loop.close(), leave_open=True)
    assert any("unclosed transport" in leak for leak in leaks), leaks


def test_finish_loop_closes_connections_nobody_closed() -> None:
    assert _run_and_stop(finish_loop, leave_open=True) == []


async def _close_directly(server: asyncio.Server) -> None:
    server.close()


def _close_while_accepting(
    close: Callable[[asyncio.Server], Coroutine[Any, Any, None]],
) -> list[str]:
    """Close a server on a `LoopThread` in the very step asyncio hands a new connection over.

    The connection is made first (the kernel completes it), so the loop's next step runs the
    accept, which queues the hand-over task; the close was queued one step earlier, ahead of it.
    """
    thread = LoopThread("close-server-test")
    thread.start()
    loop = thread.loop
    client: list[socket.socket] = []

    async def race() -> None:
        server = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        closed = loop.create_future()

        def start_closing() -> None:
            task = loop.create_task(close(server))
            task.add_done_callback(lambda _task: closed.set_result(None))

        client.append(socket.create_connection(("127.0.0.1", port)))
        loop.call_soon(start_closing)
        await closed
        for _ in range(3):  # the hand-over task has run (or failed) by now
            await asyncio.sleep(0)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        thread.run(race())
        thread.stop()
        client.pop().close()
        gc.collect()
    assert loop.is_closed()
    return [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_server_closed_directly_strands_the_connection_it_just_accepted() -> None:
    """The fault `close_server` exists for, shown so the next test is known to be able to fail."""
    leaks = _close_while_accepting(_close_directly)
    assert any("unclosed" in leak for leak in leaks), leaks


def test_close_server_hands_over_what_it_accepted_before_closing() -> None:
    assert _close_while_accepting(close_server) == []
