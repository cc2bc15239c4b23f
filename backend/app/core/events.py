"""`ChangeBus`: "this changed, reload it" — in this process, and on every process through Redis.

Caches (runtime settings, the IP blacklist, channels, API-key lookups) register a handler per topic.
`publish(topic)` runs this process's handler and, with Redis, tells every other process, whose
listener runs its own handler. If the listener loses Redis it reconnects and then runs *every*
handler once, since messages sent while it was away are gone.

Signals are the same channel with an argument ("stop reply X"): `signal(topic, arg)` reaches the
other processes' `on_signal` handlers. They are not replayed after a reconnect.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
from collections.abc import Awaitable, Callable

from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import after_commit
from app.core.tasks import TaskSet, cancel_and_wait

logger = logging.getLogger(__name__)

Handler = Callable[[], Awaitable[None]]
SignalHandler = Callable[[str], Awaitable[None]]
RECONNECT_SECONDS = 1.0


class ChangeBus:
    def __init__(self, redis: Redis | None, prefix: str) -> None:
        self._redis = redis
        self._channel = f"{prefix}:changes"
        self._origin = f"{os.getpid()}-{secrets.token_hex(4)}"
        self._handlers: dict[str, Handler] = {}
        self._signal_handlers: dict[str, SignalHandler] = {}
        self._listener: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()
        self._sends = TaskSet()

    def on(self, topic: str, handler: Handler) -> None:
        self._handlers[topic] = handler

    def on_signal(self, topic: str, handler: SignalHandler) -> None:
        self._signal_handlers[topic] = handler

    def signal(self, topic: str, arg: str) -> None:
        """Tell the other processes `topic` with `arg` (nothing happens without Redis)."""
        if self._redis is None:
            return
        self._sends.spawn(self._send(self._redis, f"{topic} {arg}"))

    async def publish(self, topic: str) -> None:
        """Reload `topic` here (awaited), then tell the other processes."""
        await self._run(topic)
        if self._redis is not None:
            await self._send(self._redis, topic)

    def announce(self, topic: str) -> None:
        """Tell only the other processes (this one has already applied the change)."""
        if self._redis is None:
            return
        self._sends.spawn(self._send(self._redis, topic))

    async def _send(self, redis: Redis, topic: str) -> None:
        try:
            await redis.publish(self._channel, f"{self._origin} {topic}")
        except RedisError as exc:
            logger.warning("Could not announce a change of %s through Redis: %s", topic, exc)

    async def _run(self, topic: str) -> None:
        handler = self._handlers.get(topic)
        if handler is None:
            return
        try:
            await handler()
        except Exception:
            logger.exception("Reloading %s failed", topic)

    async def start(self) -> None:
        """Start listening (with Redis); returns once subscribed, or after a short wait if not."""
        if self._redis is None or self._listener is not None:
            return
        self._listener = asyncio.get_running_loop().create_task(self._listen(self._redis))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._subscribed.wait(), 5)

    async def _listen(self, redis: Redis) -> None:
        first = True
        while True:
            try:
                async with redis.pubsub(ignore_subscribe_messages=True) as pubsub:
                    await pubsub.subscribe(self._channel)
                    self._subscribed.set()
                    if not first:  # anything may have changed while we were away
                        for topic in list(self._handlers):
                            await self._run(topic)
                    first = False
                    async for message in pubsub.listen():
                        await self._dispatch(message)
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                logger.warning("Change listener lost Redis (%s); reconnecting", exc)
                first = False
                await asyncio.sleep(RECONNECT_SECONDS)

    async def _dispatch(self, message: dict[str, object]) -> None:
        data = message.get("data")
        if isinstance(data, bytes):
            data = data.decode("utf-8", "replace")
        if not isinstance(data, str):
            return
        origin, _, rest = data.partition(" ")
        if origin == self._origin:
            return
        topic, _, arg = rest.partition(" ")
        signal = self._signal_handlers.get(topic)
        if signal is None:
            await self._run(topic)
            return
        try:
            await signal(arg)
        except Exception:
            logger.exception("Handling the signal %s failed", topic)

    async def stop(self) -> None:
        await self._sends.drain()
        await cancel_and_wait(self._listener)
        self._listener = None


BUS_INFO = "change_bus"  # a session's info key: the bus its changes are announced on


def announce(db: AsyncSession, topic: str) -> None:
    """Once `db` has committed, `topic` changed: reload it here, then on every other process.

    Services call this for what they change (the composition root puts its bus into every
    session's `info`); a session without one — a command-line tool's — has no one to tell.
    """
    bus = db.info.get(BUS_INFO)
    if isinstance(bus, ChangeBus):
        after_commit(db, lambda: bus.publish(topic))
