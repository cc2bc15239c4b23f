"""Getting one model call answered: may the caller use the model, which channels serve it, the
caller's limits and a concurrency slot — then `failover.py` tries the channels (`attempts.py`).

`Gateway.start_call` returns an attempt that already holds the upstream's first event (stream) or
whole answer (non-stream); the attempt owns the concurrency slot until `close()`. Callers use it
through `calls.ModelCall`, which owns the rest of the call's life.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from redis.exceptions import RedisError

from app.billing.budgets import Budgets
from app.core.config import GatewaySettings
from app.core.errors import AppError, ForbiddenError, NotFoundError, ServiceUnavailableError
from app.gateway.accounting import CallRecord
from app.gateway.attempts import Attempt, ChannelAttempts, CompleteAttempt, StreamAttempt
from app.gateway.breaker import CircuitBreaker
from app.gateway.cache import ChannelCache
from app.gateway.caller import Caller
from app.gateway.concurrency import ConcurrencyGate, GateTimeoutError
from app.gateway.failover import BUSY_RETRY_AFTER_SECONDS, AutoDisable, Failover
from app.gateway.http_client import HttpClient
from app.gateway.request import ModelRequest
from app.gateway.routing import order_candidates
from app.models.base import utcnow
from app.ratelimit.admission import Admission
from app.ratelimit.limiter import RateLimiter
from app.runtime_settings.cache import RuntimeSettingsCache


class Gateway:
    def __init__(
        self,
        *,
        settings: GatewaySettings,
        registry: ChannelCache,
        breaker: CircuitBreaker,
        gate: ConcurrencyGate,
        limiter: RateLimiter,
        admission: Admission,
        runtime: RuntimeSettingsCache,
        client: Callable[[], HttpClient],
        auto_disable: AutoDisable,
        budgets: Budgets | None = None,
    ) -> None:
        self.settings = settings
        self.budgets = budgets
        self.registry = registry
        self.breaker = breaker
        self.gate = gate
        self.limiter = limiter
        self.admission = admission
        self.runtime = runtime
        self._failover = Failover(
            attempts=ChannelAttempts(
                client=client, runtime=runtime, max_response_bytes=settings.max_response_bytes
            ),
            breaker=breaker,
            limiter=limiter,
            runtime=runtime,
            auto_disable=auto_disable,
        )

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
        self, call: CallRecord, request: ModelRequest, caller: Caller
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
        native = request.native
        if native is not None and native.untranslatable is not None:
            # Only a channel taking the request as it is can answer it.
            candidates = tuple(c for c in candidates if native.endpoint in c.native)
            if not candidates:
                raise self._reject(call, native.untranslatable)
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
            budget = (
                self.budgets.reservation(
                    caller.spender, request, [c.id for c in available], utcnow()
                )
                if self.budgets is not None
                else None
            )
            # /v1 calls: the client address's window is counted here, in the same round trip.
            client_ip = call.client_ip if call.source == "api" else None
            call.address_counted = client_ip is not None
            ticket = await self.admission.admit(
                caller.user_id, caller.key_id, caller.limits, client_ip=client_ip, budget=budget
            )
        except AppError as error:
            raise self._reject(call, error) from None
        except RedisError:
            raise self._reject(call, _store_unavailable()) from None
        call.hold = ticket.hold  # settled when the call ends (`ModelCall.close`), however it ends
        free_limits = ticket.release
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
            return await self._failover.run(call, request, order_candidates(available), release)
        except BaseException:
            release()
            raise


def _store_unavailable() -> ServiceUnavailableError:
    """Redis (limits, budgets) cannot be reached: the call is not made rather than made unchecked."""
    return ServiceUnavailableError(
        "The gateway cannot check your limits right now; retry shortly",
        code="limits_unavailable",
        headers={"Retry-After": str(BUSY_RETRY_AFTER_SECONDS)},
    )
