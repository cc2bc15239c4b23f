"""Getting one model call answered: route, wait for a slot, try channels until one answers.

`Gateway.start_call` returns an attempt that already holds the upstream's first event (stream) or
whole answer (non-stream), so every failure that can still be hidden from the client — connect error,
timeout before the first byte, 429, 5xx, a bad or empty answer, an in-band error up front — is
answered by trying the next channel (bounded attempts, one deadline). A caller's own mistake (400,
413, 422 upstream) is returned as it is and never counts against a channel; 401/403 and quota errors
disable the channel automatically. The attempt owns a concurrency slot until `close()`.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson

from app.core.config import GatewaySettings
from app.core.errors import (
    AppError,
    ForbiddenError,
    NotFoundError,
    RateLimitedError,
    ServiceUnavailableError,
)
from app.core.timers import Deadline
from app.gateway.accounting import CallRecord
from app.gateway.breaker import CircuitBreaker
from app.gateway.chunks import inband_error
from app.gateway.concurrency import ConcurrencyGate, GateTimeoutError
from app.gateway.registry import ChannelRegistry, RoutableChannel
from app.gateway.request import ChatRequest
from app.gateway.routing import order_candidates
from app.gateway.sse import SSEDecoder
from app.gateway.upstream import (
    UpstreamError,
    check_literal_address,
    iter_body,
    open_post,
    read_body,
)
from app.ratelimit.admission import Admission, CallerLimits
from app.ratelimit.limiter import RateLimiter
from app.runtime_settings.store import RuntimeSettingsStore

logger = logging.getLogger(__name__)
NO_OVERRIDES = CallerLimits()

AutoDisable = Callable[[int, str, str], Awaitable[None]]
BUSY_RETRY_AFTER_SECONDS = 2


@dataclass(frozen=True)
class Caller:
    user_id: int
    key_id: int | None = None
    # None: every model. Otherwise the public model names this key may use.
    key_models: frozenset[str] | None = None
    limits: CallerLimits = NO_OVERRIDES
    # An admin, or an account whose e-mail address is confirmed (see require_verified_email).
    confirmed: bool = True

    def may_use(self, model: str) -> bool:
        return self.key_models is None or model in self.key_models


class UpstreamFailedError(AppError):
    """Every channel tried failed; nothing had reached the client."""

    status_code = 502
    code = "upstream_error"


class UpstreamTimeoutError(AppError):
    status_code = 504
    code = "upstream_timeout"


class UpstreamRejectedError(AppError):
    """The upstream refused the request as malformed (the caller's mistake): relayed as is."""

    def __init__(self, status: int, message: str, code: str | None) -> None:
        super().__init__(message, code=code or "invalid_request_error")
        self.status_code = status


@dataclass
class Attempt:
    """A channel that answered. `close()` releases the upstream connection and the slot."""

    channel: RoutableChannel
    upstream_model: str
    response: aiohttp.ClientResponse
    _release: Callable[[], None] = field(repr=False)
    _closed: bool = False

    def close(self, *, keep_connection: bool = False) -> None:
        if self._closed:
            return
        self._closed = True
        if keep_connection:
            self.response.release()
        else:
            self.response.close()
        self._release()


@dataclass
class StreamAttempt(Attempt):
    decoder: SSEDecoder = field(default_factory=SSEDecoder)
    first_events: list[bytes] = field(default_factory=list)
    deadline: float = 0.0

    async def events(self) -> AsyncIterator[list[bytes]]:
        """Batches of SSE data payloads, the first batch being the one already read."""
        yield self.first_events
        async for chunk in iter_body(self.response, self.channel.timeouts.idle, self.deadline):
            events = self.decoder.feed(chunk)
            if events:
                yield events
        tail = self.decoder.finish()
        if tail:
            yield tail


@dataclass
class CompleteAttempt(Attempt):
    raw: bytes = b""
    parsed: dict[str, Any] = field(default_factory=dict)


class Gateway:
    def __init__(
        self,
        *,
        settings: GatewaySettings,
        registry: ChannelRegistry,
        breaker: CircuitBreaker,
        gate: ConcurrencyGate,
        limiter: RateLimiter,
        admission: Admission,
        runtime: RuntimeSettingsStore,
        session: Callable[[], aiohttp.ClientSession],
        auto_disable: AutoDisable,
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.breaker = breaker
        self.gate = gate
        self.limiter = limiter
        self.admission = admission
        self.runtime = runtime
        self._session = session
        self._auto_disable = auto_disable

    async def models_for(self, caller: Caller) -> list[tuple[str, int]]:
        """(model, created) for every model the caller may use."""
        snapshot = await self.registry.snapshot()
        return [
            (model, min(c.created_at for c in channels))
            for model, channels in sorted(snapshot.by_model.items())
            if caller.may_use(model)
        ]

    def report_stream_failure(self, attempt: Attempt) -> None:
        """A stream that had started failed part-way: it still counts against the channel."""
        self.breaker.record_failure((attempt.channel.id, attempt.upstream_model))

    @staticmethod
    def _reject(call: CallRecord, error: AppError) -> AppError:
        call.end("rejected", error.status_code, error.message)
        return error

    async def start_call(
        self, call: CallRecord, request: ChatRequest, caller: Caller
    ) -> StreamAttempt | CompleteAttempt:
        model = request.model
        if not caller.may_use(model):
            raise self._reject(
                call,
                ForbiddenError(
                    f"This API key may not use the model '{model}'",
                    code="model_not_allowed",
                    param="model",
                ),
            )
        snapshot = await self.registry.snapshot()
        candidates = snapshot.by_model.get(model)
        if not candidates:
            raise self._reject(
                call,
                NotFoundError(
                    f"The model '{model}' does not exist or no channel serves it",
                    code="model_not_found",
                    param="model",
                ),
            )
        available = [
            c for c in candidates if self.breaker.available((c.id, c.upstream_model(model)))
        ]
        if not available:
            wait = min(self.breaker.retry_in((c.id, c.upstream_model(model))) for c in candidates)
            raise self._reject(
                call,
                ServiceUnavailableError(
                    f"Every channel serving '{model}' is failing; retrying them shortly",
                    code="channels_unavailable",
                    headers={"Retry-After": str(max(1, math.ceil(wait)))},
                ),
            )
        try:
            free_limits = await self.admission.admit(caller.user_id, caller.key_id, caller.limits)
        except AppError as error:
            raise self._reject(call, error) from None
        try:
            await self.gate.acquire(self.runtime.current.queue_timeout_seconds)
        except GateTimeoutError:
            free_limits()
            raise self._reject(
                call,
                ServiceUnavailableError(
                    "The gateway is at capacity; retry shortly",
                    code="gateway_busy",
                    headers={"Retry-After": str(BUSY_RETRY_AFTER_SECONDS)},
                ),
            ) from None
        except BaseException:
            free_limits()
            raise

        def release() -> None:
            self.gate.release()
            free_limits()

        try:
            return await self._failover(call, request, order_candidates(available), release)
        except BaseException:
            release()
            raise

    async def _failover(
        self,
        call: CallRecord,
        request: ChatRequest,
        ordered: list[RoutableChannel],
        release: Callable[[], None],
    ) -> StreamAttempt | CompleteAttempt:
        values = self.runtime.current
        loop = asyncio.get_running_loop()
        deadline = loop.time() + values.failover_deadline_seconds
        last_error: UpstreamError | None = None
        last_model = request.model  # the upstream name the last error was about
        skipped_for_rpm = 0
        attempts = 0
        for channel in ordered:
            if attempts >= values.max_attempts or loop.time() >= deadline:
                break
            upstream_model = channel.upstream_model(request.model)
            key = (channel.id, upstream_model)
            if channel.rpm_limit and await self.limiter.hit(
                f"rpm:channel:{channel.id}", channel.rpm_limit, 60
            ):
                skipped_for_rpm += 1
                continue
            if not self.breaker.acquire(key):
                continue
            attempts += 1
            call.channels_tried.append(channel.id)
            try:
                attempt = await self._attempt(channel, upstream_model, request, deadline, release)
            except UpstreamError as error:
                last_error, last_model = error, upstream_model
                verdict = error.verdict
                if verdict == "caller":
                    self.breaker.release_probe(key)
                    call.channel_id, call.upstream_model = channel.id, upstream_model
                    status = error.status or 400
                    call.end("upstream_error", status, error.message)
                    public = error.public_message(upstream_model, request.model)
                    raise UpstreamRejectedError(status, public, error.code) from None
                if verdict in ("auth", "quota"):
                    self.breaker.release_probe(key)
                    reason = "auth_failed" if verdict == "auth" else "quota_exceeded"
                    await self._auto_disable(channel.id, reason, error.message)
                    self.registry.invalidate()
                else:
                    self.breaker.record_failure(key, error.retry_after)
                logger.warning(
                    "Channel %s (#%d) failed for %s: %s",
                    channel.name,
                    channel.id,
                    upstream_model,
                    error.message,
                )
                continue
            except BaseException:
                self.breaker.release_probe(key)
                raise
            self.breaker.record_success(key)
            call.channel_id, call.upstream_model = channel.id, upstream_model
            return attempt
        raise self._exhausted(call, last_error, last_model, skipped_for_rpm)

    def _exhausted(
        self,
        call: CallRecord,
        last_error: UpstreamError | None,
        last_model: str,
        skipped_for_rpm: int,
    ) -> AppError:
        """The caller's error once no channel answered. Its message says what happened in plain
        words (the provider's own, where it gave some); the call log keeps every detail."""
        if last_error is None:
            if skipped_for_rpm:
                error: AppError = RateLimitedError(
                    "Every channel serving this model is at its rate limit",
                    code="channel_rate_limited",
                    retry_after=5,
                )
            else:
                error = ServiceUnavailableError(
                    "No channel is available for this model right now",
                    code="channels_unavailable",
                    headers={"Retry-After": str(BUSY_RETRY_AFTER_SECONDS)},
                )
            call.end("rejected", error.status_code, error.message)
            return error
        public = last_error.public_message(last_model, call.requested_model)
        message = f"No channel could answer; the last said: {public}"
        if last_error.status == 429:
            retry = last_error.retry_after
            error = RateLimitedError(
                message, code="upstream_rate_limited", retry_after=math.ceil(retry or 1)
            )
            call.end("upstream_error", 429, last_error.message)
        elif last_error.kind == "timeout":
            error = UpstreamTimeoutError(message)
            call.end("timeout", 504, last_error.message)
        else:
            error = UpstreamFailedError(message)
            call.end("upstream_error", 502, last_error.message)
        return error

    async def _attempt(
        self,
        channel: RoutableChannel,
        upstream_model: str,
        request: ChatRequest,
        deadline: float,
        release: Callable[[], None],
    ) -> StreamAttempt | CompleteAttempt:
        check_literal_address(channel.literal_address, self.runtime.current.allow_private_upstreams)
        loop = asyncio.get_running_loop()
        started = loop.time()
        first_byte = min(channel.timeouts.first_byte, max(0.001, deadline - started))
        total_deadline = started + channel.timeouts.total
        body = request.upstream_body(upstream_model)
        response: aiohttp.ClientResponse | None = None
        phase = "first_byte"
        try:
            # One timeout for the whole attempt: first the first-byte deadline, then (non-stream)
            # moved to the channel's total deadline once the answer has started.
            async with Deadline(started + first_byte) as deadline_scope:
                response = await open_post(
                    self._session(),
                    channel.chat_url,
                    channel.headers,
                    body,
                    channel.client_timeout,
                    channel.api_key,
                )
                if request.stream:
                    decoder = SSEDecoder()
                    first = await self._read_until_substantive(
                        response, decoder, channel, total_deadline
                    )
                    return StreamAttempt(
                        channel=channel,
                        upstream_model=upstream_model,
                        response=response,
                        _release=release,
                        decoder=decoder,
                        first_events=first,
                        deadline=total_deadline,
                    )
                phase = "body"
                deadline_scope.reschedule(total_deadline)
                raw = await read_body(response, self.settings.max_response_bytes)
            try:
                parsed = orjson.loads(raw)
            except orjson.JSONDecodeError:
                raise UpstreamError("protocol", "upstream answered with invalid JSON") from None
            if not isinstance(parsed, dict):
                raise UpstreamError("protocol", "upstream answered with unexpected JSON")
            error = inband_error(parsed, channel.api_key)
            if error is not None:
                raise error
            return CompleteAttempt(
                channel=channel,
                upstream_model=upstream_model,
                response=response,
                _release=release,
                raw=raw,
                parsed=parsed,
            )
        except TimeoutError:
            if response is not None:
                response.close()
            if phase == "first_byte":
                raise UpstreamError(
                    "timeout", f"no first byte from upstream within {first_byte:g}s"
                ) from None
            raise UpstreamError(
                "timeout", "upstream did not finish within the channel's total timeout"
            ) from None
        except BaseException:
            if response is not None:
                response.close()
            raise

    @staticmethod
    async def _read_until_substantive(
        response: aiohttp.ClientResponse,
        decoder: SSEDecoder,
        channel: RoutableChannel,
        total_deadline: float,
    ) -> list[bytes]:
        """Read the stream until a chunk says something (text, reasoning, a tool call, the end).

        Until then nothing has been sent to the client, so an error or a stall here can still be
        answered by another channel. The events read are returned to be relayed.
        """
        events: list[bytes] = []
        async for chunk in iter_body(response, channel.timeouts.idle, total_deadline):
            new = decoder.feed(chunk)
            events += new
            if any(_substantive(payload, channel.api_key) for payload in new):
                return events
        events += decoder.finish()
        if any(_substantive(payload, channel.api_key) for payload in events):
            return events
        raise UpstreamError("protocol", "upstream ended the stream without any answer")


_SUBSTANCE_FIELDS = (
    "content",
    "reasoning_content",
    "reasoning",
    "tool_calls",
    "function_call",
    "refusal",
)


def _substantive(payload: bytes, secret: str) -> bool:
    """Whether a stream event carries an answer. Raises for an in-band error."""
    if payload == b"[DONE]":
        return True
    try:
        parsed = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return False
    if not isinstance(parsed, dict):
        return False
    error = inband_error(parsed, secret)
    if error is not None:
        raise error
    if parsed.get("usage"):
        return True
    for choice in parsed.get("choices") or []:
        if not isinstance(choice, dict):
            continue
        if choice.get("finish_reason"):
            return True
        delta = choice.get("delta")
        if isinstance(delta, dict) and any(delta.get(name) for name in _SUBSTANCE_FIELDS):
            return True
    return False
