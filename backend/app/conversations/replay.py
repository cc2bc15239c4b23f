"""The events of a reply, kept so any client can (re-)attach and miss nothing.

A reply appends numbered events (`message`, `delta`, `reasoning`, `usage`, `error`, `done`); a
client reads them from a position. The SSE id of an event is `<reply id>.<number>`, so a browser's
`Last-Event-ID` says both which reply it was following and how far it got.

The process running a reply keeps its events in a bounded in-memory buffer (its own clients read
from there). With Redis the events are also written to a Redis stream (`XADD … MAXLEN ~`), in
order, by one background writer per reply, so a client connected to another process can follow
it there. When a buffer has dropped events a client still needed, the client is told so (an
`error` event with code `replay_gap`) and continues from the oldest event kept.

The frames are written here, as bytes for a plain `StreamingResponse`, not by sse-starlette (which
the first design named): measured, it costs 4 to 5 times the CPU per event (10.5 vs 2.3 µs,
`bench/sse_choice.py`, bench/RESULTS.md), and what it adds — pings, disconnect detection, a send
timeout — the chat has already: heartbeat comments here, the follower cancelled when its request
ends, and the send watchdog (`core/send_watchdog.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
from redis.asyncio import Redis
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)
END_EVENTS = frozenset({"done"})
GAP_ERROR = orjson.dumps(
    {
        "message": "Part of this reply is no longer available to replay; "
        "the whole reply is in the conversation once it has finished.",
        "code": "replay_gap",
    }
)
LOST_ERROR = orjson.dumps(
    {"message": "The reply was interrupted (its server stopped).", "code": "reply_lost"}
)


@dataclass(frozen=True, slots=True)
class ReplyEvent:
    seq: int
    name: str
    data: bytes  # JSON


def sse_frame(reply_id: str, event: ReplyEvent) -> bytes:
    return b"id: %s.%d\nevent: %s\ndata: %s\n\n" % (
        reply_id.encode(),
        event.seq,
        event.name.encode(),
        event.data,
    )


HEARTBEAT_FRAME = b": keep-alive\n\n"


def parse_event_id(value: str | None) -> tuple[str, int] | None:
    """`<reply id>.<number>` → (reply id, number); anything else → None."""
    if not value:
        return None
    reply_id, _, seq = value.strip().rpartition(".")
    if not reply_id or not seq.isdigit() or len(reply_id) > 64:
        return None
    return reply_id, int(seq)


@dataclass
class ReadResult:
    events: list[ReplyEvent]
    gap: bool = False  # events the reader needed were dropped before it read them
    finished: bool = False  # the reply has ended (its `done` is in `events` or was read before)
    lost: bool = False  # the reply's process is gone and it never finished


class ReplySource(Protocol):
    async def read(self, after: int, wait: float) -> ReadResult: ...


class ReplyBuffer:
    """One reply's events in this process (bounded), and the readers waiting for more."""

    def __init__(self, reply_id: str, max_events: int) -> None:
        self.reply_id = reply_id
        self._events: deque[ReplyEvent] = deque(maxlen=max_events)
        self._next = 1
        self.finished = False
        self._changed = asyncio.Event()

    def append(self, name: str, data: bytes) -> ReplyEvent:
        event = ReplyEvent(self._next, name, data)
        self._next += 1
        self._events.append(event)
        if name in END_EVENTS:
            self.finished = True
        self._wake()
        return event

    def _wake(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def _after(self, after: int) -> ReadResult:
        events = self._events
        if not events:
            return ReadResult([], finished=self.finished)
        first = events[0].seq
        start = max(0, after + 1 - first)
        return ReadResult(
            [events[i] for i in range(start, len(events))],
            gap=first > after + 1,
            finished=self.finished,
        )

    async def read(self, after: int, wait: float) -> ReadResult:
        changed = self._changed
        result = self._after(after)
        if result.events or result.finished:
            return result
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(changed.wait(), wait)
        return self._after(after)


def stream_key(prefix: str, reply_id: str) -> str:
    return f"{prefix}:chat:events:{reply_id}"


class RedisMirror:
    """Writes one reply's events to its Redis stream, in order, without slowing the reply down."""

    def __init__(
        self, redis: Redis, prefix: str, reply_id: str, max_events: int, keep_seconds: float
    ) -> None:
        self._redis = redis
        self._key = stream_key(prefix, reply_id)
        self._max = max_events
        self._keep = max(1, int(keep_seconds))
        self._queue: asyncio.Queue[ReplyEvent | None] = asyncio.Queue()
        self._task = asyncio.get_running_loop().create_task(self._run())

    def put(self, event: ReplyEvent) -> None:
        self._queue.put_nowait(event)

    async def close(self) -> None:
        """Write what is queued, then let the stream expire after the keep time."""
        self._queue.put_nowait(None)
        await self._task

    async def _run(self) -> None:
        ending = False
        # Long enough for any reply; shortened to the keep time when the reply ends.
        running_ttl = 24 * 3600
        while not ending:
            batch = [await self._queue.get()]
            while not self._queue.empty():
                batch.append(self._queue.get_nowait())
            ending = batch[-1] is None
            events = [event for event in batch if event is not None]
            try:
                async with self._redis.pipeline(transaction=False) as pipe:
                    for event in events:
                        pipe.xadd(
                            self._key,
                            {"e": event.name, "d": event.data},
                            id=f"0-{event.seq}",
                            maxlen=self._max,
                            approximate=True,
                        )
                    pipe.expire(self._key, self._keep if ending else running_ttl)
                    await pipe.execute()
            except (RedisError, OSError) as exc:
                logger.warning("Could not mirror reply events to Redis: %s", exc)


class RedisReplySource:
    """Follows a reply that runs in another process, through its Redis stream."""

    def __init__(
        self,
        redis: Redis,
        prefix: str,
        reply_id: str,
        alive: Callable[[], Awaitable[bool]],
    ) -> None:
        self._redis = redis
        self._key = stream_key(prefix, reply_id)
        self._alive = alive

    async def read(self, after: int, wait: float) -> ReadResult:
        block_ms = max(1, int(wait * 1000))
        answer: Any = await self._redis.xread({self._key: f"0-{after}"}, count=1000, block=block_ms)
        events: list[ReplyEvent] = []
        for _key, entries in answer or []:
            for entry_id, fields in entries:
                seq = int(_decode(entry_id).split("-", 1)[1])
                events.append(ReplyEvent(seq, _decode(fields[b"e"]), bytes(fields[b"d"])))
        if events:
            return ReadResult(
                events,
                gap=events[0].seq > after + 1,
                finished=any(event.name in END_EVENTS for event in events),
            )
        if await self._alive():
            return ReadResult([])
        # Not running any more: either it ended (its `done` is the stream's last entry, or the
        # stream has expired) or its process died part-way.
        last: Any = await self._redis.xrevrange(self._key, count=1)
        if not last or _decode(last[0][1][b"e"]) in END_EVENTS:
            return ReadResult([], finished=True)
        return ReadResult([], lost=True)


def _decode(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


async def follow(
    source: ReplySource, reply_id: str, after: int, heartbeat: float
) -> AsyncIterator[bytes]:
    """SSE frames of a reply from position `after` until its `done`; a comment when idle."""
    told_gap = False
    while True:
        result = await source.read(after, heartbeat)
        if result.gap and not told_gap:
            told_gap = True
            yield sse_frame(reply_id, ReplyEvent(after, "error", GAP_ERROR))
        for event in result.events:
            yield sse_frame(reply_id, event)
            after = event.seq
        if result.lost:
            yield sse_frame(reply_id, ReplyEvent(after, "error", LOST_ERROR))
            done = orjson.dumps({"message": None, "status": "error"})
            yield sse_frame(reply_id, ReplyEvent(after, "done", done))
            return
        if result.finished:
            return
        if not result.events:
            yield HEARTBEAT_FRAME
