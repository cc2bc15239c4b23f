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
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.conversations import titles
from app.conversations.claims import Claims
from app.conversations.replay import (
    RedisMirror,
    RedisReplySource,
    ReplyBuffer,
    ReplySource,
    follow,
)
from app.conversations.schemas import MessageRead
from app.core.config import ChatSettings
from app.core.errors import AppError, ConflictError
from app.core.events import ChangeBus
from app.gateway.accounting import CallRecord
from app.gateway.call_events import CallError, ReasoningDelta, TextDelta
from app.gateway.calls import ModelCall, ModelCalls
from app.gateway.request import ChatRequest
from app.gateway.service import Caller
from app.gateway.upstream import UpstreamError
from app.gateway.usage import Usage
from app.models import Conversation, Message
from app.models.base import utcnow
from app.ratelimit.admission import CallerLimits
from app.runtime_settings.store import RuntimeSettingsStore

logger = logging.getLogger(__name__)
STOP_SIGNAL = "chat_stop"
STOP_WAIT_SECONDS = 10.0
STORE_RETRIES = (0.2, 0.5, 1.0, 2.0)
Status = Literal["complete", "stopped", "error"]


@dataclass
class ReplySpec:
    """Everything a reply needs, gathered (and the user's message stored) before it starts."""

    conversation_id: int
    user_id: int
    limits: CallerLimits
    model: str
    messages: list[dict[str, Any]]
    params: dict[str, Any]
    request_id: str
    client_ip: str | None
    user_message: dict[str, Any] | None = None  # the stored user message, for the `message` event
    name_after: str | None = None  # the question, when this reply should name the conversation


@dataclass
class Outcome:
    status: Status = "complete"
    error: dict[str, Any] | None = None
    first_reasoning: float | None = None
    first_text: float | None = None
    last_reasoning: float | None = None

    def fail(self, message: str, code: str, **extra: Any) -> None:
        self.status = "error"
        self.error = {"message": message, "code": code, **extra}

    def reasoning_ms(self) -> int | None:
        if self.first_reasoning is None:
            return None
        end = self.first_text or self.last_reasoning or self.first_reasoning
        return int((end - self.first_reasoning) * 1000)


@dataclass
class Reply:
    id: str
    spec: ReplySpec
    buffer: ReplyBuffer
    mirror: RedisMirror | None
    task: asyncio.Task[None] | None = None
    stop_reason: str | None = None
    generating: bool = False
    renewal: asyncio.Task[None] | None = field(default=None, repr=False)

    def stop(self, reason: str) -> None:
        """Stop the generation (once). Before it has begun, it will not begin; after it has
        ended, this does nothing."""
        if self.stop_reason is not None:
            return
        self.stop_reason = reason
        if self.generating and self.task is not None:
            self.task.cancel()


class ReplyManager:
    def __init__(
        self,
        *,
        calls: ModelCalls,
        sessionmaker: async_sessionmaker[AsyncSession],
        runtime: RuntimeSettingsStore,
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
                await self._generate(reply, call, outcome)
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

    async def _generate(self, reply: Reply, call: ModelCall, outcome: Outcome) -> None:
        spec = reply.spec
        try:
            if spec.user_message is not None:
                self._emit(reply, "message", spec.user_message)
            body = {
                **spec.params,
                "model": spec.model,
                "messages": spec.messages,
                "stream": True,
            }
            request = ChatRequest(
                body=body, model=spec.model, stream=True, include_usage=True, messages=spec.messages
            )
            caller = Caller(user_id=spec.user_id, limits=spec.limits)
            # A crash keeps the text so far (logs.journal).
            await call.start(request, caller, checkpoint=lambda: _checkpoint(spec, call))
            async for event in call.events():
                now = time.perf_counter()
                if type(event) is ReasoningDelta:
                    outcome.first_reasoning = outcome.first_reasoning or now
                    outcome.last_reasoning = now
                    self._emit(reply, "reasoning", {"content": event.text})
                elif type(event) is TextDelta:
                    outcome.first_text = outcome.first_text or now
                    self._emit(reply, "delta", {"content": event.text})
                elif type(event) is CallError:  # failed part-way
                    outcome.fail(event.message, event.code)
        except asyncio.CancelledError:
            self._stopped(reply, outcome)
        except AppError as error:  # refused before anything was generated (limits, no channel …)
            retry_after = error.headers.get("Retry-After")
            outcome.fail(
                error.message,
                error.code,
                status=error.status_code,
                retry_after=int(retry_after) if retry_after and retry_after.isdigit() else None,
            )
        except Exception:
            logger.exception("Reply %s failed", reply.id)
            call.fail_internally()
            outcome.fail("The reply failed because of an internal error", "internal_error")
        finally:
            call.close()

    async def _finish(self, reply: Reply, call: ModelCall, outcome: Outcome) -> None:
        spec = reply.spec
        usage = call.usage()
        try:
            message = await self._store(spec, call, outcome, usage)
        finally:
            if reply.renewal is not None:
                reply.renewal.cancel()
            try:
                await self._claims.release(spec.conversation_id, reply.id)
            except (RedisError, OSError) as exc:  # the lease runs out by itself
                logger.warning("Could not release conversation %s: %s", spec.conversation_id, exc)
        if outcome.error is not None:
            self._emit(reply, "error", outcome.error)
        self._emit(reply, "usage", _usage_payload(usage))
        self._emit(reply, "done", {"status": outcome.status, "message": message})
        if reply.mirror is not None:
            await reply.mirror.close()
        self._release_here(reply)
        if (
            spec.name_after is not None
            and outcome.status == "complete"
            and self._runtime.current.chat_auto_title
        ):
            task = asyncio.get_running_loop().create_task(self._name(spec, call.text))
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

    async def _store(
        self, spec: ReplySpec, call: ModelCall, outcome: Outcome, usage: Usage
    ) -> dict[str, Any] | None:
        """Write the assistant message and the conversation's counters, retrying a busy database."""
        error = outcome.error or {}
        record = call.record
        for delay in (*STORE_RETRIES, None):
            now = utcnow()
            message = Message(
                conversation_id=spec.conversation_id,
                role="assistant",
                content=call.text,
                reasoning=call.reasoning or None,
                status=outcome.status,
                error=error.get("message"),
                error_code=error.get("code"),
                model=spec.model,
                channel_id=record.channel_id,
                request_id=spec.request_id,
                prompt_tokens=usage.prompt_tokens,
                completion_tokens=usage.completion_tokens,
                reasoning_tokens=usage.reasoning_tokens,
                total_tokens=usage.total_tokens,
                usage_source=usage.source,
                ttft_ms=record.ttft_ms,
                reasoning_ms=outcome.reasoning_ms(),
                duration_ms=int((time.perf_counter() - record.started) * 1000),
                created_at=now,
            )
            try:
                async with self._sessionmaker() as db:
                    db.add(message)
                    await db.execute(
                        update(Conversation)
                        .where(Conversation.id == spec.conversation_id)
                        .values(
                            message_count=Conversation.message_count + 1,
                            total_tokens=Conversation.total_tokens + usage.total_tokens,
                            last_message_at=now,
                            updated_at=now,
                        )
                    )
                    await db.commit()
                    return MessageRead.model_validate(message).model_dump(mode="json")
            except IntegrityError:
                logger.info("Conversation %s was deleted during its reply", spec.conversation_id)
                return None
            except (OperationalError, OSError) as exc:
                if delay is None:
                    logger.error(
                        "Could not store the reply of conversation %s: %s",
                        spec.conversation_id,
                        exc,
                    )
                    return None
                await asyncio.sleep(delay)
        return None

    async def _name(self, spec: ReplySpec, answer: str) -> None:
        question = spec.name_after or ""
        model = self._runtime.current.chat_title_model or spec.model
        try:
            async with asyncio.timeout(self._settings.title_timeout_seconds):
                title = await titles.generate(
                    self._calls,
                    model=model,
                    question=question,
                    answer=answer,
                    user_id=spec.user_id,
                    request_id=spec.request_id,
                    client_ip=spec.client_ip,
                )
        except (AppError, UpstreamError, TimeoutError, ValueError) as exc:
            logger.info("Naming conversation %s by its first words: %s", spec.conversation_id, exc)
            title = titles.fallback(question)
        try:
            async with self._sessionmaker() as db:
                await db.execute(
                    update(Conversation)
                    .where(
                        Conversation.id == spec.conversation_id,
                        Conversation.title_source == "auto",
                        Conversation.title == "",
                    )
                    .values(title=title)
                )
                await db.commit()
        except (OperationalError, OSError) as exc:
            logger.warning(
                "Could not store the title of conversation %s: %s", spec.conversation_id, exc
            )

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


def _checkpoint(spec: ReplySpec, call: ModelCall) -> dict[str, Any]:
    """The reply as far as it has come, for finishing it if this server dies mid-way."""
    return {
        "conversation_id": spec.conversation_id,
        "model": spec.model,
        "request_id": spec.request_id,
        "content": call.text,
        "reasoning": call.reasoning,
    }


def _usage_payload(usage: Usage) -> dict[str, Any]:
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "reasoning_tokens": usage.reasoning_tokens,
        "cached_tokens": usage.cached_tokens,
        "total_tokens": usage.total_tokens,
        "source": usage.source,
    }
