"""The `/v1/chat/completions` relay: a parsed request in, JSON or an SSE stream out.

Guarantees: the client never gets a silent clean end after a failure (a mid-stream problem becomes an
SSE `error` frame and the stream ends without `[DONE]`); a client that goes away cancels the upstream
call at once; exactly one call-log row is submitted, however the call ends.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import orjson
from starlette.responses import Response, StreamingResponse
from starlette.types import Message, Receive, Scope, Send

from app.core.errors import AppError
from app.core.timers import timer_wheel
from app.gateway.accounting import CallRecord, EndReason
from app.gateway.chunks import StreamProcessor, process_complete
from app.gateway.request import ChatRequest, parse_chat_request
from app.gateway.service import Caller, CompleteAttempt, Gateway, StreamAttempt
from app.gateway.streaming import payload_batches
from app.gateway.upstream import UpstreamError

T = TypeVar("T")
Submit = Callable[[dict[str, Any]], None]
Begin = Callable[[CallRecord], None]
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
CLIENT_CLOSED = 499  # nginx's "client closed request"
DONE_FRAME = b"data: [DONE]\n\n"
WATCH_AFTER_SECONDS = 0.05


class ClientGoneError(Exception):
    """The client disconnected before the answer started."""


async def run_until_disconnect(receive: Receive, awaitable: Awaitable[T]) -> T:
    """Await `awaitable`, cancelling it if the client disconnects first.

    Watching needs a task of its own, which costs a quick call more than all its routing does, so
    it starts only once the call has run for `WATCH_AFTER_SECONDS`: an answer that is quicker needs
    no watcher, and a client that left earlier is seen then (its disconnect is already queued).
    """
    current = asyncio.current_task()
    assert current is not None
    gone = False
    watcher: asyncio.Task[None] | None = None

    async def watch() -> None:
        nonlocal gone
        while True:
            message: Message = await receive()
            if message["type"] == "http.disconnect":
                gone = True
                current.cancel()
                return

    def start_watching() -> None:
        nonlocal watcher
        watcher = asyncio.get_running_loop().create_task(watch())

    timer = timer_wheel().call_later(WATCH_AFTER_SECONDS, start_watching)
    try:
        return await awaitable
    except asyncio.CancelledError:
        if gone:
            current.uncancel()
            raise ClientGoneError from None
        raise
    finally:
        timer.cancel()
        if watcher is not None:
            watcher.cancel()


def public_model(call: CallRecord) -> str | None:
    """The model name to show in the answer when the channel renamed it (`model_mapping`): the
    caller sees the name it asked for. None when nothing was renamed (the provider's own `model`,
    often a dated version, is passed on as it came)."""
    if call.upstream_model and call.upstream_model != call.requested_model:
        return call.requested_model
    return None


def error_frame(message: str, code: str, error_type: str = "upstream_error") -> bytes:
    payload = {"error": {"message": message, "type": error_type, "param": None, "code": code}}
    return b"data: " + orjson.dumps(payload) + b"\n\n"


class ActiveStreams:
    """The `/v1` streams being relayed by this process, so a shutdown can end them properly."""

    def __init__(self) -> None:
        self._relays: set[StreamRelay] = set()

    def __len__(self) -> int:
        return len(self._relays)

    def add(self, relay: StreamRelay) -> None:
        self._relays.add(relay)

    def discard(self, relay: StreamRelay) -> None:
        self._relays.discard(relay)

    def interrupt_all(self) -> int:
        relays = list(self._relays)
        for relay in relays:
            relay.interrupt()
        return len(relays)


SHUTDOWN_MESSAGE = "The server is restarting; the answer was cut short. Send the request again."


class StreamRelay:
    def __init__(
        self,
        call: CallRecord,
        request: ChatRequest,
        attempt: StreamAttempt,
        gateway: Gateway,
        submit: Submit,
        active: ActiveStreams | None = None,
    ) -> None:
        self.call = call
        self.request = request
        self.attempt = attempt
        self.gateway = gateway
        self.submit = submit
        self.active = active
        self.interrupted = False
        if active is not None:
            active.add(self)

    def interrupt(self) -> None:
        """End the stream now (shutdown): the upstream is closed, the client gets an error frame."""
        self.interrupted = True
        self.attempt.response.close()

    async def body(self) -> AsyncIterator[bytes]:
        call, attempt = self.call, self.attempt
        processor = StreamProcessor(
            call,
            split_think=attempt.channel.split_think,
            include_usage=self.request.include_usage,
            secret=attempt.channel.api_key,
            public_model=public_model(call),
        )
        try:
            async for batch, finished in payload_batches(attempt, processor):
                frames = b"".join([b"data: " + payload + b"\n\n" for payload in batch])
                if finished:
                    call.end("done", 200)
                    yield frames + DONE_FRAME
                    return
                yield frames
        except UpstreamError as error:
            if self.interrupted:
                call.end("upstream_error", 200, "server shutdown")
                yield error_frame(SHUTDOWN_MESSAGE, "server_shutdown", "server_error")
                return
            self.gateway.report_stream_failure(attempt)
            reason: EndReason = "timeout" if error.kind == "timeout" else "upstream_error"
            call.end(reason, 200, error.message)
            yield error_frame(
                error.public_message(call.upstream_model, call.requested_model),
                "upstream_timeout" if reason == "timeout" else "upstream_error",
            )
        except (asyncio.CancelledError, GeneratorExit):
            call.end("client_gone", CLIENT_CLOSED)
            raise
        finally:
            self.close()

    def close(self) -> None:
        """Idempotent: release the upstream and the slot, and submit the one log row."""
        if self.active is not None:
            self.active.discard(self)
        if self.call.end_reason is None:
            self.call.end("client_gone", CLIENT_CLOSED)
        self.attempt.close(keep_connection=self.call.end_reason == "done")
        self.call.finish(self.submit)


class RelayResponse(StreamingResponse):
    """A StreamingResponse that closes the relay even if the body was never iterated."""

    def __init__(self, relay: StreamRelay) -> None:
        super().__init__(relay.body(), media_type="text/event-stream", headers=SSE_HEADERS)
        self._relay = relay

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            iterator = self.body_iterator
            if hasattr(iterator, "aclose"):
                with contextlib.suppress(Exception):
                    await iterator.aclose()
            self._relay.close()


def _api_call(caller: Caller, request_id: str, client_ip: str) -> CallRecord:
    """The log record of one `/v1` call, before its body is read (so the model is not known)."""
    return CallRecord(
        request_id=request_id,
        source="api",
        user_id=caller.user_id,
        api_key_id=caller.key_id,
        client_ip=client_ip,
        requested_model="",
    )


def abandoned(*, submit: Submit, caller: Caller, request_id: str, client_ip: str) -> Response:
    """A signed-in caller left before its request body arrived: logged as `client_gone` (the
    model is unknown), and nothing was sent upstream."""
    call = _api_call(caller, request_id, client_ip)
    call.end("client_gone", CLIENT_CLOSED, "the client left before its request arrived")
    call.finish(submit)
    return Response(status_code=CLIENT_CLOSED)


async def chat_completions(
    *,
    gateway: Gateway,
    submit: Submit,
    caller: Caller,
    raw: bytes,
    request_id: str,
    client_ip: str,
    receive: Receive,
    max_choices: int,
    active: ActiveStreams | None = None,
    begin: Begin | None = None,
) -> Response:
    call = _api_call(caller, request_id, client_ip)
    try:
        request = parse_chat_request(raw, max_choices=max_choices)
    except AppError as error:
        call.end("rejected", error.status_code, error.message)
        call.finish(submit)
        raise
    call.requested_model = request.model
    call.stream = request.stream
    call.messages = request.messages
    if begin is not None:  # a crash leaves a trace of the call (logs.journal)
        begin(call)
    try:
        attempt = await run_until_disconnect(receive, gateway.start_call(call, request, caller))
    except ClientGoneError:
        call.end("client_gone", CLIENT_CLOSED)
        call.finish(submit)
        return Response(status_code=CLIENT_CLOSED)
    except BaseException as error:
        if isinstance(error, AppError):
            call.end("rejected", error.status_code, error.message)
        else:
            call.end("upstream_error", 500, "internal error")
        call.finish(submit)
        raise
    if isinstance(attempt, CompleteAttempt):
        try:
            body = process_complete(
                call,
                attempt.raw,
                attempt.parsed,
                split_think=attempt.channel.split_think,
                public_model=public_model(call),
            )
            call.mark_first_token()  # for a non-stream client, the whole answer is the first byte
            call.end("done", 200)
        finally:
            attempt.close(keep_connection=True)
            call.finish(submit)
        return Response(body, media_type="application/json")
    return RelayResponse(StreamRelay(call, request, attempt, gateway, submit, active))
