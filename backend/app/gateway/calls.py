"""One model call, from routing to its one call-log row: the facade every caller of a model uses.

`/v1` (`relay.py`), the web chat (`conversations/generation.py`) and conversation titles all go
through `ModelCall`: `start()` routes and fails over until a channel answers, then `answer()` (a
whole answer) or `events()` (typed events as the stream arrives, `call_events.py`), and `close()`.
The call owns everything in between — the upstream connection and concurrency slot, the crash
journal entry, how the call ended and the one log row — so no caller rebuilds that lifecycle:

- however the call ends (done, refused, failed part-way, cancelled, the client gone, a shutdown),
  it is ended once and its row submitted once; `close()` is idempotent and safe in any state;
- a stream that fails part-way ends with a `CallError` the caller can show (never a silent end);
- a cancelled call is recorded as `client_gone` (with the caller's `cancel_note`) and re-raised.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable
from typing import Any

from app.billing.budgets import Budgets
from app.billing.ledger import Hold
from app.core.errors import AppError
from app.core.tasks import TaskSet
from app.gateway.accounting import CallRecord, EndReason
from app.gateway.answer_forms import Reading
from app.gateway.attempts import CompleteAttempt, StreamAttempt
from app.gateway.call_events import (
    CallEnd,
    CallError,
    CallEvent,
    ReasoningDelta,
    Relay,
    TextDelta,
    ToolCallDelta,
    UsageReport,
)
from app.gateway.caller import Caller
from app.gateway.request import ModelRequest, Native
from app.gateway.service import Gateway
from app.gateway.streaming import AllowanceReachedError, payload_batches
from app.gateway.upstream import UpstreamError
from app.gateway.usage import Usage, estimate_text_tokens
from app.logs.journal import ReplyState

CLIENT_CLOSED = 499  # nginx's "client closed request"
BUDGET_CUT_MESSAGE = (
    "The answer was cut short: it reached what your budget could pay for. Ask for a shorter "
    "answer (max_tokens), or ask an administrator for more budget."
)
SHUTDOWN_MESSAGE = "The server is restarting; the answer was cut short. Send the request again."
Submit = Callable[[dict[str, Any]], None]
Price = Callable[[dict[str, Any]], int | None]  # a call-log row's cost (`billing.prices`)
Begin = Callable[[CallRecord, ReplyState | None], None]


def public_model(call: CallRecord) -> str | None:
    """The model name to show in the answer when the channel renamed it (`model_mapping`): the
    caller sees the name it asked for. None when nothing was renamed (the provider's own `model`,
    often a dated version, is passed on as it came)."""
    if call.upstream_model and call.upstream_model != call.requested_model:
        return call.requested_model
    return None


class _Allowance:
    """An answer's tokens so far (estimated as they stream) against the output its budget
    reservation covers, less a margin for the last network read, so that the cost stays within
    the reservation."""

    def __init__(self, record: CallRecord, tokens: int) -> None:
        self._parts = (record.completion_parts, record.reasoning_parts, record.tool_parts)
        self._seen = [0, 0, 0]
        self._left = tokens - max(16, tokens // 20)

    def exceeded(self) -> bool:
        """Count what was recorded since the last look; past the allowance, take it back out
        (it is not relayed, so it is not charged)."""
        before = list(self._seen)
        for index, parts in enumerate(self._parts):
            seen = self._seen[index]
            if len(parts) > seen:
                self._left -= estimate_text_tokens("".join(parts[seen:]))
                self._seen[index] = len(parts)
        if self._left >= 0:
            return False
        for index, parts in enumerate(self._parts):
            del parts[before[index] :]
        return True


class ActiveStreams:
    """The `/v1` streams being relayed by this process, so a shutdown can end them properly."""

    def __init__(self) -> None:
        self._calls: set[ModelCall] = set()

    def __len__(self) -> int:
        return len(self._calls)

    def add(self, call: ModelCall) -> None:
        self._calls.add(call)

    def discard(self, call: ModelCall) -> None:
        self._calls.discard(call)

    def interrupt_all(self) -> int:
        calls = list(self._calls)
        for call in calls:
            call.interrupt()
        return len(calls)


class ModelCalls:
    """Makes `ModelCall`s: the gateway, the call-log writer and the shutdown registry they share."""

    def __init__(
        self,
        gateway: Gateway,
        submit: Submit,
        *,
        begin: Begin | None = None,
        active: ActiveStreams | None = None,
        price: Price | None = None,
        budgets: Budgets | None = None,
    ) -> None:
        self.gateway = gateway
        self.submit = submit
        self.begin = begin
        self.active = active if active is not None else ActiveStreams()
        self.price = price
        self.budgets = budgets
        self.settling = TaskSet()  # settlements that need a round trip (Redis)

    def settle(self, hold: Hold, cost: int | None) -> None:
        if self.budgets is None:
            return
        pending = self.budgets.settle(hold, cost)
        if pending is not None:
            self.settling.spawn(pending)

    def new(
        self, record: CallRecord, *, interruptible: bool = False, cancel_note: str | None = None
    ) -> ModelCall:
        """`interruptible`: a shutdown ends the stream with an error event (a `/v1` stream; a
        chat reply is stopped by its own manager instead). `cancel_note`: the log's word for a
        cancelled call (e.g. "stopped")."""
        return ModelCall(self, record, interruptible=interruptible, cancel_note=cancel_note)


class ModelCall:
    def __init__(
        self,
        calls: ModelCalls,
        record: CallRecord,
        *,
        interruptible: bool,
        cancel_note: str | None,
    ) -> None:
        self.record = record
        self._calls = calls
        self._interruptible = interruptible
        self._cancel_note = cancel_note
        self._attempt: StreamAttempt | CompleteAttempt | None = None
        self._request: ModelRequest | None = None
        self._interrupted = False
        self._closed = False

    # ── ending before it starts ──────────────────────────────────────────────────────────────
    def refuse(self, error: AppError) -> None:
        """The request was refused before any routing (e.g. a malformed body)."""
        self.record.end("rejected", error.status_code, error.message)
        self.close()

    def abandon(self, note: str) -> None:
        """The caller left before the request could be made."""
        self.record.end("client_gone", CLIENT_CLOSED, note)
        self.close()

    # ── the call ─────────────────────────────────────────────────────────────────────────────
    async def start(
        self, request: ModelRequest, caller: Caller, *, checkpoint: ReplyState | None = None
    ) -> None:
        """Route and fail over until a channel answers. Raises what refused or failed the call
        (an `AppError` for the caller), the call then ended and logged. `checkpoint`: the
        caller's partial result, kept by the crash journal (`logs.journal`)."""
        record = self.record
        self._request = request
        if self._calls.begin is not None:
            self._calls.begin(record, checkpoint)
        try:
            self._attempt = await self._calls.gateway.start_call(record, request, caller)
        except BaseException as error:
            if isinstance(error, AppError):
                record.end("rejected", error.status_code, error.message)
            elif isinstance(error, asyncio.CancelledError):
                record.end("client_gone", CLIENT_CLOSED, self._cancel_note)
            else:
                record.end("upstream_error", 500, "internal error")
            self.close()
            raise

    @property
    def streaming(self) -> bool:
        return isinstance(self._attempt, StreamAttempt)

    @property
    def native(self) -> bool:
        """The answer is in the request's own format, passed through (`passthrough.py`): a
        stream's `Relay` payloads are whole SSE frames."""
        return self._attempt is not None and self._attempt.form.native

    def answer(self) -> bytes:
        """A started non-stream call's answer, as the client should get it; ends the call."""
        attempt, record = self._attempt, self.record
        assert isinstance(attempt, CompleteAttempt)
        try:
            reading = Reading(
                record,
                attempt.channel.api_key,
                split_think=attempt.channel.split_think,
                public_model=public_model(record),
                native=self._native,
            )
            body = attempt.form.complete(reading, attempt.raw, attempt.parsed)
            record.mark_first_token()  # for a non-stream client, the whole answer is the first byte
            record.end("done", 200)
        finally:
            self.close()
        return body

    async def events(
        self, *, include_usage: bool = True, relay: bool = False, deltas: bool = True
    ) -> AsyncGenerator[CallEvent, None]:
        """A started stream, as it arrives; the call is closed when this ends, however it ends.

        `relay`: yield the payloads to pass on (`Relay`), with the usage-only chunk if
        `include_usage`; `deltas`: yield text, reasoning and tool-call deltas.
        """
        attempt, record = self._attempt, self.record
        assert isinstance(attempt, StreamAttempt)
        if self._interruptible:
            self._calls.active.add(self)
        processor = attempt.form.processor(
            Reading(
                record,
                attempt.channel.api_key,
                split_think=attempt.channel.split_think,
                include_usage=include_usage,
                public_model=public_model(record) if relay else None,
                native=self._native,
            )
        )
        text = record.completion_parts
        reasoning = record.reasoning_parts
        tools = record.tool_parts
        seen_text = seen_reasoning = seen_tools = 0
        hold = record.hold
        meter = (
            _Allowance(record, hold.output_tokens).exceeded
            if hold is not None and hold.output_tokens
            else None
        )
        try:
            async for batch in payload_batches(attempt, processor, meter):
                finished = batch.finished
                if relay:
                    final = processor.final if finished else None
                    yield Relay(batch.payloads, finished, final, batch.chunks)
                if deltas:
                    if len(reasoning) > seen_reasoning:
                        yield ReasoningDelta("".join(reasoning[seen_reasoning:]))
                        seen_reasoning = len(reasoning)
                    if len(text) > seen_text:
                        yield TextDelta("".join(text[seen_text:]))
                        seen_text = len(text)
                    if len(tools) > seen_tools:
                        yield ToolCallDelta("".join(tools[seen_tools:]))
                        seen_tools = len(tools)
                if finished:
                    record.end("done", 200)
                    yield UsageReport(record.usage())
                    yield CallEnd("done")
                    return
        except AllowanceReachedError:
            record.end("rejected", 429, "cut: the answer reached what its budget covers")
            yield CallError(BUDGET_CUT_MESSAGE, "insufficient_quota", "insufficient_quota")
        except UpstreamError as error:
            if self._interrupted:
                record.end("upstream_error", 200, "server shutdown")
                yield CallError(SHUTDOWN_MESSAGE, "server_shutdown", "server_error")
                return
            self._calls.gateway.report_stream_failure(attempt)
            reason: EndReason = "timeout" if error.kind == "timeout" else "upstream_error"
            record.end(reason, 200, error.message)
            yield CallError(
                error.public_message(record.upstream_model, record.requested_model),
                "upstream_timeout" if reason == "timeout" else "upstream_error",
            )
        except (asyncio.CancelledError, GeneratorExit):
            record.end("client_gone", CLIENT_CLOSED, self._cancel_note)
            raise
        finally:
            self.close()

    @property
    def _native(self) -> Native | None:
        return self._request.native if self._request is not None else None

    # ── what it said ─────────────────────────────────────────────────────────────────────────
    @property
    def text(self) -> str:
        return "".join(self.record.completion_parts)

    @property
    def reasoning(self) -> str:
        return "".join(self.record.reasoning_parts)

    def usage(self) -> Usage:
        """As reported by the provider, or estimated (also for a call cut short)."""
        return self.record.usage()

    # ── ending ───────────────────────────────────────────────────────────────────────────────
    def fail_internally(self) -> None:
        """The caller's own code failed around the call: logged as an internal error."""
        self.record.end("upstream_error", 500, "internal error")
        self.close()

    def interrupt(self) -> None:
        """End the stream now (shutdown): the upstream is closed, the reader gets a `CallError`."""
        self._interrupted = True
        if self._attempt is not None:
            self._attempt.response.close()

    def close(self) -> None:
        """Idempotent: release the upstream and the slot, and submit the one log row."""
        if self._closed:
            return
        self._closed = True
        self._calls.active.discard(self)
        record = self.record
        if record.end_reason is None:
            record.end("client_gone", CLIENT_CLOSED, self._cancel_note)
        if self._attempt is not None:
            self._attempt.close()
        calls, hold = self._calls, record.hold

        def price(row: dict[str, Any]) -> int | None:
            cost = calls.price(row) if calls.price is not None else None
            if hold is not None:
                row["balance"] = hold.from_balance  # the writer takes it from the balance
                calls.settle(hold, cost)
            return cost

        record.finish(calls.submit, price)
