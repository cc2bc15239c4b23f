"""`POST /v1/messages` and `/v1/messages/count_tokens`: Anthropic's Messages API on any channel.

The request goes as it is to an Anthropic channel (`passthrough`: its answer and events come back
unchanged but for the model name), and translated to Chat Completions (`anthropic_format`) to any
other, its answer and stream translated back; either way it is made like every other `/v1` call
(`relay.relay_call`: routing, failover, limits, one log row). Keys are accepted as `x-api-key` (the `anthropic` SDK) or as a bearer token.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable

import orjson
from starlette.responses import JSONResponse, Response

from app.core.errors import ForbiddenError
from app.core.errors import anthropic_error_body as error_body
from app.gateway.anthropic_format import (
    MessagesStream,
    parse_messages_request,
    to_message,
)
from app.gateway.anthropic_format import event as event_frame
from app.gateway.call_events import CallError, Relay
from app.gateway.calls import ModelCall
from app.gateway.request import ModelRequest
from app.gateway.usage import estimate_prompt_tokens, estimate_text_tokens


def stream(call: ModelCall, request: ModelRequest) -> AsyncIterator[bytes]:
    """From an Anthropic channel, its own events; from any other, chat chunks translated."""
    if call.native:
        return _relayed(call)
    return _translated(call, request)


async def _relayed(call: ModelCall) -> AsyncIterator[bytes]:
    async with contextlib.aclosing(
        call.events(include_usage=True, relay=True, deltas=False)
    ) as events:
        async for event in events:
            if type(event) is Relay:
                yield b"".join(event.payloads)
            elif type(event) is CallError:
                status = 504 if event.code == "upstream_timeout" else 502
                yield event_frame("error", error_body(status, event.message))


async def _translated(call: ModelCall, request: ModelRequest) -> AsyncIterator[bytes]:
    translator = MessagesStream(request.model)
    async with contextlib.aclosing(
        call.events(include_usage=True, relay=True, deltas=False)
    ) as events:
        async for event in events:
            if type(event) is Relay:
                frames = [frame for chunk in event.chunks for frame in translator.feed(chunk)]
                if event.finished:
                    frames += translator.finish()
                if frames:
                    yield b"".join(frames)
            elif type(event) is CallError:
                status = 504 if event.code == "upstream_timeout" else 502
                yield b"".join(translator.failed(status, event.message))


async def answer(body: bytes, call: ModelCall, request: ModelRequest) -> Response:
    if call.native:
        return Response(body, media_type="application/json")
    return JSONResponse(to_message(orjson.loads(body), request.model))


def count_tokens(raw: bytes, may_use: Callable[[str], bool]) -> Response:
    """An estimate of the prompt's tokens (no model is called)."""
    request = parse_messages_request(raw, counting=True)
    if not may_use(request.model):
        raise ForbiddenError(
            f"This API key may not use the model '{request.model}'",
            code="model_not_allowed",
            param="model",
        )
    tools = request.body.get("tools")
    tokens = estimate_prompt_tokens(request.messages)
    if tools:
        tokens += estimate_text_tokens(orjson.dumps(tools).decode())
    return JSONResponse({"input_tokens": tokens})
