"""A response's head waits for its body's first write, so a small answer is one system call."""

from __future__ import annotations

import asyncio

from app.serving.protocol import HeadFirstTransport


class Recorder:
    """Stands in for the socket's transport: what was written, one entry per write."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False
        self.aborted = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def is_closing(self) -> bool:
        return self.closed or self.aborted

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True


async def test_head_and_body_leave_together() -> None:
    sink = Recorder()
    transport = HeadFirstTransport(sink, asyncio.get_running_loop())  # type: ignore[arg-type]
    transport.write(b"HTTP/1.1 200 OK\r\n\r\n")
    assert sink.writes == []
    transport.write(b"body")
    assert sink.writes == [b"HTTP/1.1 200 OK\r\n\r\nbody"]
    transport.write(b"more")  # later writes go straight through
    assert sink.writes[-1] == b"more"
    await asyncio.sleep(0)
    assert len(sink.writes) == 2


async def test_a_head_whose_body_comes_later_leaves_at_the_end_of_the_loop_turn() -> None:
    """A stream's head is not held until its first event arrives."""
    sink = Recorder()
    transport = HeadFirstTransport(sink, asyncio.get_running_loop())  # type: ignore[arg-type]
    transport.write(b"HTTP/1.1 200 OK\r\n\r\n")
    await asyncio.sleep(0)
    assert sink.writes == [b"HTTP/1.1 200 OK\r\n\r\n"]
    transport.write(b"data: 1\n\n")
    assert sink.writes[-1] == b"data: 1\n\n"


async def test_close_sends_what_is_held_and_abort_drops_it() -> None:
    loop = asyncio.get_running_loop()
    sink = Recorder()
    transport = HeadFirstTransport(sink, loop)  # type: ignore[arg-type]
    transport.write(b"head")
    transport.close()
    assert sink.writes == [b"head"]
    assert sink.closed
    dropped = Recorder()
    transport = HeadFirstTransport(dropped, loop)  # type: ignore[arg-type]
    transport.write(b"head")
    transport.abort()
    await asyncio.sleep(0)
    assert dropped.writes == []
    assert dropped.aborted
