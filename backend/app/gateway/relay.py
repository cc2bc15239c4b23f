"""The `/v1` relay: a parsed request in, JSON or an SSE stream out.

The call itself is a `ModelCall` (`calls.py`); this adds what is HTTP's: a client that goes away
before the answer starts cancels the call at once, and the stream's events become SSE frames — the
provider's own bytes, `[DONE]` after the last, and an `error` frame (no `[DONE]`) for a failure
part-way, so the client never gets a silent clean end after a failure.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

import orjson
from starlette.responses import Response, StreamingResponse
from starlette.types import Message, Receive, Scope, Send

from app.core.errors import AppError
from app.core.timers import timer_wheel
from app.gateway.accounting import CallRecord
from app.gateway.call_events import CallError, Relay
from app.gateway.caller import Caller
from app.gateway.calls import CLIENT_CLOSED, ModelCall, ModelCalls
from app.gateway.request import ModelRequest

T = TypeVar("T")
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
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


def error_frame(message: str, code: str, error_type: str = "upstream_error") -> bytes:
    payload = {"error": {"message": message, "type": error_type, "param": None, "code": code}}
    return b"data: " + orjson.dumps(payload) + b"\n\n"


async def _sse(call: ModelCall, include_usage: bool) -> AsyncIterator[bytes]:
    """The stream's events as SSE frames: the provider's payloads, `[DONE]` after the last, an
    error frame if it failed part-way."""
    async with contextlib.aclosing(
        call.events(include_usage=include_usage, relay=True, deltas=False)
    ) as events:
        async for event in events:
            if type(event) is Relay:
                frames = b"".join([b"data: " + payload + b"\n\n" for payload in event.payloads])
                yield frames + DONE_FRAME if event.finished else frames
            elif type(event) is CallError:
                yield error_frame(event.message, event.code, event.type)


def openai_stream(call: ModelCall, request: ModelRequest) -> AsyncIterator[bytes]:
    """The provider's own chunks (Chat Completions, legacy completions)."""
    return _sse(call, request.include_usage)


async def openai_answer(body: bytes, _call: ModelCall, _request: ModelRequest) -> Response:
    return Response(body, media_type="application/json")


StreamFrames = Callable[[ModelCall, ModelRequest], AsyncIterator[bytes]]
# A whole answer as the client gets it: (the call's answer, the call, its request) in.
Answer = Callable[[bytes, ModelCall, ModelRequest], Awaitable[Response]]


class RelayResponse(StreamingResponse):
    """A StreamingResponse that closes the call even if the body was never iterated."""

    def __init__(self, call: ModelCall, frames: AsyncIterator[bytes]) -> None:
        super().__init__(frames, media_type="text/event-stream", headers=SSE_HEADERS)
        self._call = call

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            iterator = self.body_iterator
            if hasattr(iterator, "aclose"):
                with contextlib.suppress(Exception):
                    await iterator.aclose()
            self._call.close()


CountAddress = Callable[[str], Awaitable[AppError | None]]


async def _count_refused(count_address: CountAddress | None, client_ip: str) -> None:
    """A refused model call still counts against its address's request rate."""
    if count_address is not None:
        await count_address(client_ip)


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


def abandoned(*, calls: ModelCalls, caller: Caller, request_id: str, client_ip: str) -> Response:
    """A signed-in caller left before its request body arrived: logged as `client_gone` (the
    model is unknown), and nothing was sent upstream."""
    calls.new(_api_call(caller, request_id, client_ip)).abandon(
        "the client left before its request arrived"
    )
    return Response(status_code=CLIENT_CLOSED)


async def relay_call(
    *,
    calls: ModelCalls,
    caller: Caller,
    raw: bytes,
    parse: Callable[[bytes], ModelRequest],
    request_id: str,
    client_ip: str,
    receive: Receive,
    stream: StreamFrames = openai_stream,
    answer: Answer = openai_answer,
    count_address: CountAddress | None = None,
) -> Response:
    """One `/v1` model call: `parse` reads its body (chat, embeddings, legacy completions, or a
    format translated to chat); the answer goes back through `answer`, a stream as the frames
    `stream` makes of it (by default the provider's own). A call refused before its admission
    counted its client address is counted with `count_address`."""
    call = calls.new(_api_call(caller, request_id, client_ip), interruptible=True)
    try:
        request = parse(raw)
    except AppError as error:
        call.refuse(error)
        await _count_refused(count_address, client_ip)
        raise
    record = call.record
    record.requested_model = request.model
    record.stream = request.stream
    record.messages = request.messages
    try:
        await run_until_disconnect(receive, call.start(request, caller))
    except ClientGoneError:
        return Response(status_code=CLIENT_CLOSED)
    except AppError:
        if not record.address_counted:
            await _count_refused(count_address, client_ip)
        raise
    if call.streaming:
        return RelayResponse(call, stream(call, request))
    return await answer(call.answer(), call, request)
