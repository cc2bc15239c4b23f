"""Replies: generated in the background, followed by any number of clients, stored once at the end.

A reply is a task of the process that started it, not of the HTTP request: a client that goes
away (a reload, a closed tab) leaves it running, and any client can re-attach through the replay
buffer (`replay.py`). It goes through the gateway like a `/v1` call — the user's limits, the LLM
semaphore, routing, failover and one call-log row — and holds its conversation (`claims.py`) so
that one reply runs at a time per conversation.

Its assistant message is written once, when it ends: `complete`, `stopped` (the user pressed
stop, or the server is shutting down; the partial text is kept) or `error` (partial text kept, the
error said). Its events end with `done`, which carries the stored message.

`stop()` works from any process: the reply's own process cancels it; another one sends a signal
through Redis and waits for the reply's `done`.

This module is the reply's lifecycle (claim, launch, follow, stop, finish, shutdown); the model
call is `generation.py`, storing the message `reply_store.py`, naming the conversation `titles.py`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator
from typing import Any, Literal

import orjson
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.conversations import titles
from app.conversations.claims import Claims
from app.conversations.generation import generate
from app.conversations.replay import (
    RedisMirror,
    RedisReplySource,
    ReplyBuffer,
    ReplySource,
    follow,
)
from app.conversations.reply import Outcome, Reply, ReplySpec, usage_payload
from app.conversations.reply_store import store_reply
from app.core.config import ChatSettings
from app.core.errors import ConflictError
from app.core.events import ChangeBus
from app.gateway.accounting import CallRecord
from app.gateway.calls import ModelCall, ModelCalls
from app.runtime_settings.cache import RuntimeSettingsCache

logger = logging.getLogger(__name__)
STOP_SIGNAL = "chat_stop"
STOP_WAIT_SECONDS = 10.0
STORE_RETRIES = (0.2, 0.5, 1.0, 2.0)
Status = Literal["complete", "stopped", "error"]


class ReplyManager:
    def __init__(
        self,
        *,
        calls: ModelCalls,
        sessionmaker: async_sessionmaker[AsyncSession],
        runtime: RuntimeSettingsCache,
        claims: Claims,
        bus: ChangeBus,
        settings: ChatSettings,
        redis: Redis | None,
        prefix: str,
    ) -> None:
        self._calls = calls
        self._sessionmaker = sessionmaker
        self._runtime = runtime
        self._claims = claims
        self._bus = bus
        self._settings = settings
        self._redis = redis
        self._prefix = prefix
        self._running: dict[str, Reply] = {}
        self._buffers: dict[str, ReplyBuffer] = {}
        self._titles: set[asyncio.Task[None]] = set()
        bus.on_signal(STOP_SIGNAL, self._on_stop_signal)

    # ── starting ─────────────────────────────────────────────────────────────────────────────
    async def claim(self, conversation_id: int) -> str:
        """Hold the conversation for a new reply (its id), or 409 if one is running."""
        reply_id = secrets.token_urlsafe(9)
        if not await self._claims.claim(conversation_id, reply_id):
            raise ConflictError(
                "A reply is still being generated in this conversation; wait for it or stop it",
                code="reply_running",
            )
        return reply_id

    async def unclaim(self, conversation_id: int, reply_id: str) -> None:
        """Give the conversation back when the reply could not be started after all."""
        await self._claims.release(conversation_id, reply_id)

    def launch(self, reply_id: str, spec: ReplySpec) -> AsyncIterator[bytes]:
        """Start generating; returns the event stream of the reply from its first event."""
        max_events = self._settings.replay_max_events
        buffer = ReplyBuffer(reply_id, max_events)
        mirror = None
        if self._redis is not None:
            mirror = RedisMirror(
                self._redis, self._prefix, reply_id, max_events, self._settings.replay_keep_seconds
            )
        reply = Reply(reply_id, spec, buffer, mirror)
        self._running[reply_id] = reply
        self._buffers[reply_id] = buffer
        loop = asyncio.get_running_loop()
        reply.task = loop.create_task(self._run(reply), name=f"reply-{reply_id}")
        if self._redis is not None:
            reply.renewal = loop.create_task(self._renew(reply))
        return follow(buffer, reply_id, 0, self._settings.heartbeat_seconds)

    @property
    def running_here(self) -> int:
        return len(self._running)

    # ── following, stopping ──────────────────────────────────────────────────────────────────
    async def running(self, conversation_id: int) -> str | None:
        return await self._claims.holder(conversation_id)

    async def attach(
        self, conversation_id: int, last_event_id: tuple[str, int] | None
    ) -> AsyncIterator[bytes] | None:
        """The latest reply's events after `last_event_id` (all of them if it names another
        reply), then live; None when there is no reply to attach to."""
        reply_id = await self._claims.latest(conversation_id)
        if reply_id is None:
            return None
        source = self._source(conversation_id, reply_id)
        if source is None:
            return None
        after = last_event_id[1] if last_event_id and last_event_id[0] == reply_id else 0
        return follow(source, reply_id, after, self._settings.heartbeat_seconds)

    def _source(self, conversation_id: int, reply_id: str) -> ReplySource | None:
        buffer = self._buffers.get(reply_id)
        if buffer is not None:
            return buffer
        if self._redis is None:
            return None

        async def alive() -> bool:
            return await self._claims.holder(conversation_id) == reply_id

        return RedisReplySource(self._redis, self._prefix, reply_id, alive)

    async def stop(self, conversation_id: int) -> tuple[str | None, str | None]:
        """Stop the running reply, wherever it runs: (its id, how it ended), or (None, None)."""
        reply_id = await self._claims.holder(conversation_id)
        if reply_id is None:
            return None, None
        reply = self._running.get(reply_id)
        if reply is not None:
            reply.stop("user")
        else:
            self._bus.signal(STOP_SIGNAL, reply_id)
        source = self._source(conversation_id, reply_id)
        status = await self._ending(source) if source is not None else None
        return reply_id, status

    async def _ending(self, source: ReplySource) -> str | None:
        """Wait (bounded) for the reply's `done`; the status it reports."""
        after = 0
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(STOP_WAIT_SECONDS):
                while True:
                    result = await source.read(after, 1.0)
                    for event in result.events:
                        after = event.seq
                        if event.name == "done":
                            return str(orjson.loads(event.data).get("status"))
                    if result.lost:
                        return "error"
                    if result.finished and not result.events:
                        return None
        return None

    async def _on_stop_signal(self, reply_id: str) -> None:
        reply = self._running.get(reply_id)
        if reply is not None:
            reply.stop("user")

    # ── running ──────────────────────────────────────────────────────────────────────────────
    def _emit(self, reply: Reply, name: str, payload: Any) -> None:
        event = reply.buffer.append(name, orjson.dumps(payload))
        if reply.mirror is not None:
            reply.mirror.put(event)

    async def _run(self, reply: Reply) -> None:
        spec = reply.spec
        call = self._calls.new(
            CallRecord(
                request_id=spec.request_id,
                source="chat",
                user_id=spec.user_id,
                api_key_id=None,
                client_ip=spec.client_ip,
                requested_model=spec.model,
                stream=True,
                messages=spec.messages,
            ),
            cancel_note="stopped",
        )
        outcome = Outcome()
        if reply.stop_reason is None:
            reply.generating = True
            try:
                await generate(
                    call, spec, outcome, lambda name, data: self._emit(reply, name, data)
                )
            except asyncio.CancelledError:
                self._stopped(reply, outcome)
            finally:
                reply.generating = False
        else:  # stopped before it began
            self._stopped(reply, outcome, cancelled=False)
            call.close()
        try:
            await self._finish(reply, call, outcome)
        except Exception:
            logger.exception("Finishing reply %s failed", reply.id)
            self._release_here(reply)

    def _stopped(self, reply: Reply, outcome: Outcome, *, cancelled: bool = True) -> None:
        task = asyncio.current_task()
        if cancelled and task is not None:
            task.uncancel()
        outcome.status = "stopped"
        if reply.stop_reason == "shutdown":
            outcome.error = {
                "message": "The server restarted while this reply was generated",
                "code": "server_restart",
            }

    async def _finish(self, reply: Reply, call: ModelCall, outcome: Outcome) -> None:
        spec = reply.spec
        usage = call.usage()
        try:
            message = await store_reply(self._sessionmaker, spec, call, outcome, usage)
        finally:
            if reply.renewal is not None:
                reply.renewal.cancel()
            try:
                await self._claims.release(spec.conversation_id, reply.id)
            except (RedisError, OSError) as exc:  # the lease runs out by itself
                logger.warning("Could not release conversation %s: %s", spec.conversation_id, exc)
        if outcome.error is not None:
            self._emit(reply, "error", outcome.error)
        self._emit(reply, "usage", usage_payload(usage))
        self._emit(reply, "done", {"status": outcome.status, "message": message})
        if reply.mirror is not None:
            await reply.mirror.close()
        self._release_here(reply)
        if (
            spec.name_after is not None
            and outcome.status == "complete"
            and self._runtime.current.chat_auto_title
        ):
            task = asyncio.get_running_loop().create_task(
                titles.name_conversation(
                    self._calls,
                    self._sessionmaker,
                    spec,
                    call.text,
                    model=self._runtime.current.chat_title_model or spec.model,
                    seconds=self._settings.title_timeout_seconds,
                )
            )
            self._titles.add(task)
            task.add_done_callback(self._titles.discard)

    def _release_here(self, reply: Reply) -> None:
        """Forget the reply as running; keep its events for late readers, then drop them."""
        self._running.pop(reply.id, None)
        reply.buffer.finished = True
        asyncio.get_running_loop().call_later(
            self._settings.replay_keep_seconds, self._buffers.pop, reply.id, None
        )

    async def _renew(self, reply: Reply) -> None:
        interval = self._settings.lock_lease_seconds / 3
        while True:
            await asyncio.sleep(interval)
            try:
                if not await self._claims.renew(reply.spec.conversation_id, reply.id):
                    logger.warning("Reply %s lost the hold on its conversation", reply.id)
            except (RedisError, OSError) as exc:
                logger.warning("Could not renew the hold of reply %s: %s", reply.id, exc)

    # ── shutdown ─────────────────────────────────────────────────────────────────────────────
    async def shutdown(self) -> None:
        """Stop every reply running here (each stores its partial text) and wait for them."""
        replies = list(self._running.values())
        for reply in replies:
            reply.stop("shutdown")
        await asyncio.gather(*(r.task for r in replies if r.task), return_exceptions=True)
        for task in list(self._titles):
            task.cancel()
        await asyncio.gather(*self._titles, return_exceptions=True)
