"""Trying channels in order until one answers, within a bounded number of attempts and one deadline.

Every failure that can still be hidden from the caller — connect error, timeout before the first
byte, 429, 5xx, a bad or empty answer, an in-band error up front — moves on to the next channel. A
caller's own mistake (400, 413, 422 upstream) is returned as it is and never counts against a
channel; 401/403 and quota errors disable the channel automatically. When no channel answered, the
caller's error says what happened in plain words; the call log keeps every detail.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable

from app.core.errors import AppError, RateLimitedError, ServiceUnavailableError
from app.core.upstream_rules import parse_rules
from app.gateway.accounting import CallRecord
from app.gateway.attempts import ChannelAttempts, CompleteAttempt, StreamAttempt
from app.gateway.breaker import CircuitBreaker
from app.gateway.cache import RoutableChannel
from app.gateway.request import ModelRequest
from app.gateway.upstream import UpstreamError
from app.ratelimit.limiter import RateLimiter
from app.runtime_settings.cache import RuntimeSettingsCache

logger = logging.getLogger(__name__)
AutoDisable = Callable[[int, str, str], Awaitable[None]]
BUSY_RETRY_AFTER_SECONDS = 2


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


class Failover:
    def __init__(
        self,
        *,
        attempts: ChannelAttempts,
        breaker: CircuitBreaker,
        limiter: RateLimiter,
        runtime: RuntimeSettingsCache,
        auto_disable: AutoDisable,
    ) -> None:
        self._attempts = attempts
        self._breaker = breaker
        self._limiter = limiter
        self._runtime = runtime
        self._auto_disable = auto_disable

    async def run(
        self,
        call: CallRecord,
        request: ModelRequest,
        ordered: list[RoutableChannel],
        release: Callable[[], None],
    ) -> StreamAttempt | CompleteAttempt:
        values = self._runtime.current
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
            if channel.rpm_limit and await self._limiter.hit(
                f"rpm:channel:{channel.id}", channel.rpm_limit, 60
            ):
                skipped_for_rpm += 1
                continue
            if not self._breaker.acquire(key):
                continue
            attempts += 1
            call.channels_tried.append(channel.id)
            try:
                attempt = await self._attempts(channel, upstream_model, request, deadline, release)
            except UpstreamError as error:
                last_error, last_model = error, upstream_model
                verdict = error.verdict(parse_rules(values.upstream_error_rules))
                if verdict == "caller":
                    self._breaker.release_probe(key)
                    call.channel_id, call.upstream_model = channel.id, upstream_model
                    status = error.status or 400
                    call.end("upstream_error", status, error.message)
                    public = error.public_message(upstream_model, request.model)
                    raise UpstreamRejectedError(status, public, error.code) from None
                if verdict in ("auth", "quota"):
                    self._breaker.release_probe(key)
                    reason = "auth_failed" if verdict == "auth" else "quota_exceeded"
                    # Announced on commit: routing reloads here (before the next attempt) and
                    # on every other process.
                    await self._auto_disable(channel.id, reason, error.message)
                else:
                    self._breaker.record_failure(key, error.retry_after)
                logger.warning(
                    "Channel %s (#%d) failed for %s: %s",
                    channel.name,
                    channel.id,
                    upstream_model,
                    error.message,
                )
                continue
            except BaseException:
                self._breaker.release_probe(key)
                raise
            self._breaker.record_success(key)
            call.channel_id, call.upstream_model = channel.id, upstream_model
            return attempt
        raise _exhausted(call, last_error, last_model, skipped_for_rpm)


def _exhausted(
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
        # The provider's hint of when to come back is passed on (a 503 stays a 503).
        retry = last_error.retry_after
        headers = {"Retry-After": str(math.ceil(retry))} if retry is not None else None
        if last_error.status == 503:
            error = ServiceUnavailableError(message, code="upstream_unavailable", headers=headers)
        else:
            error = UpstreamFailedError(message, headers=headers)
        call.end("upstream_error", error.status_code, last_error.message)
    return error
