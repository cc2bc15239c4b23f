"""`POST /v1/responses`, `GET` and `DELETE /v1/responses/{id}`: OpenAI's Responses API on any channel.

A request is translated to Chat Completions (`responses_format`) and made like every other `/v1`
call (`relay.relay_call`); the answer and the stream are translated back. With `store` (the
default) the response is kept for its user: `GET` returns it, `DELETE` removes it, and a request
with `previous_response_id` continues its conversation (the earlier turns are sent before the new
input). Kept responses are deleted after the runtime setting `response_retention_days`.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.responses import JSONResponse, Response

from app.core.db import commit
from app.core.errors import AppError, NotFoundError
from app.gateway import responses_format as fmt
from app.gateway.call_events import CallError, Relay
from app.gateway.caller import Caller
from app.gateway.calls import ModelCall
from app.gateway.relay import Answer, StreamFrames
from app.gateway.request import ModelRequest
from app.gateway.responses_store import ResponseStore
from app.gateway.wire_values import new_id
from app.models import ModelResponse
from app.models.base import utcnow

Sessions = async_sessionmaker[AsyncSession]
logger = logging.getLogger(__name__)


def _not_found(response_id: str) -> NotFoundError:
    return NotFoundError(
        f"No response with id '{response_id[:64]}' was found", code="response_not_found"
    )


async def _earlier(
    sessions: Sessions, response_id: str, caller: Caller
) -> tuple[list[Any] | None, list[Any]]:
    """(the conversation's items, or None if kept before items were; its chat messages)."""
    async with sessions() as db:
        row = (
            await db.execute(
                select(ModelResponse.items, ModelResponse.messages).where(
                    ModelResponse.id == response_id, ModelResponse.user_id == caller.user_id
                )
            )
        ).first()
    if row is None:
        error = _not_found(response_id)
        error.param = "previous_response_id"
        raise error
    return row.items, list(row.messages or ())


class Turn:
    """One `POST /v1/responses`: its request, its id, and how its answer is kept.

    The answer comes translated from Chat Completions, or as it is from a channel that speaks the
    Responses API (`ModelCall.native`); either way it carries this turn's id.
    """

    def __init__(self, sessions: Sessions, store: ResponseStore, caller: Caller) -> None:
        self._sessions = sessions
        self._store = store
        self._caller = caller
        self.id = new_id("resp")
        self.body: dict[str, Any] = {}
        self.items: list[Any] = []  # the conversation up to this turn's answer, as items
        self.request: ModelRequest | None = None

    async def prepare(self, raw: bytes) -> Callable[[bytes], ModelRequest]:
        """The `parse` for `relay_call`: the request, with the earlier conversation in front (a
        refusal is raised from it, so the call is logged as refused)."""
        try:
            self.body, request = fmt.parse_responses_request(raw)
            previous = self.body.get("previous_response_id")
            earlier_items: list[Any] | None = None
            earlier_messages: list[Any] | None = None
            if previous:
                earlier_items, earlier_messages = await _earlier(
                    self._sessions, previous, self._caller
                )
                if earlier_items is not None:
                    earlier_messages = None
            fmt.continue_conversation(request, self.body, earlier_items, earlier_messages)
        except AppError as error:
            refusal = error

            def refuse(_raw: bytes) -> ModelRequest:
                raise refusal

            return refuse
        if request.native is not None:
            request.native.answer_fields = {"id": self.id}
            if previous:
                request.native.answer_fields["previous_response_id"] = previous
        self.items = [*(earlier_items or ()), *fmt.input_items(self.body["input"])]
        self.request = request
        return lambda _raw: request

    async def keep(
        self, output: list[Any], response: dict[str, Any], *, native: bool = False
    ) -> None:
        """Keep the answer for `GET` and follow-ups (unless `store` is false). A failure to keep
        it is logged; the caller still gets the answer. A translated answer's reasoning is not
        kept for follow-ups (chat does not send reasoning back)."""
        if self.body.get("store", True) is False or self.request is None:
            return
        if not native:
            output = [item for item in output if item.get("type") != "reasoning"]
        row = {
            "id": self.id,
            "user_id": self._caller.user_id,
            "api_key_id": self._caller.key_id,
            "created_at": utcnow(),
            "model": str(self.body.get("model"))[:256],
            "items": [*self.items, *output],
            "messages": [],
            "body": response,
        }
        try:
            await self._store.keep(row)
        except Exception:
            logger.exception("Could not keep response %s", self.id)

    @property
    def answer(self) -> Answer:
        async def answer(raw: bytes, call: ModelCall, _request: ModelRequest) -> Response:
            if call.native:  # the provider's response object, with this turn's id
                response = orjson.loads(raw)
                output = response.get("output")
                await self.keep(output if isinstance(output, list) else [], response, native=True)
                return Response(raw, media_type="application/json")
            chat = orjson.loads(raw)
            output, incomplete = fmt.output_of(chat)
            chat_usage = chat.get("usage")
            status = "incomplete" if incomplete else "completed"
            response = fmt.response_object(
                self.body,
                self.id,
                _now(),
                output,
                fmt.usage_of(chat_usage),
                status,
                None,
                incomplete,
            )
            await self.keep(output, response)
            return JSONResponse(response)

        return answer

    @property
    def stream(self) -> StreamFrames:
        def frames(call: ModelCall, _request: ModelRequest) -> AsyncIterator[bytes]:
            return self._relayed(call) if call.native else self._translated(call)

        return frames

    async def _relayed(self, call: ModelCall) -> AsyncIterator[bytes]:
        """The provider's own events; a failure part-way ends with an `error` event."""
        sent = 0  # events so far: the next one's sequence number
        async with contextlib.aclosing(
            call.events(include_usage=True, relay=True, deltas=False)
        ) as events:
            async for event in events:
                if type(event) is Relay:
                    if event.final is not None:
                        output = event.final.get("output")
                        output = output if isinstance(output, list) else []
                        await self.keep(output, event.final, native=True)
                    sent += len(event.payloads)
                    yield b"".join(event.payloads)
                elif type(event) is CallError:
                    error = {"code": event.code, "message": event.message, "param": None}
                    yield fmt.sse({"type": "error", "sequence_number": sent, **error})

    async def _translated(self, call: ModelCall) -> AsyncIterator[bytes]:
        translator = fmt.ResponsesStream(self.body, self.id)
        async with contextlib.aclosing(
            call.events(include_usage=True, relay=True, deltas=False)
        ) as events:
            async for event in events:
                if type(event) is Relay:
                    frames = [f for chunk in event.chunks for f in translator.feed(chunk)]
                    if event.finished:
                        frames += translator.finish()
                        status = "incomplete" if translator.incomplete else "completed"
                        await self.keep(translator.output, translator.response(status))
                    if frames:
                        yield b"".join(frames)
                elif type(event) is CallError:
                    yield b"".join(translator.failed(event.message, event.code))


def _now() -> int:
    return int(time.time())


async def retrieve(sessions: Sessions, response_id: str, caller: Caller) -> Response:
    async with sessions() as db:
        body = await db.scalar(
            select(ModelResponse.body).where(
                ModelResponse.id == response_id, ModelResponse.user_id == caller.user_id
            )
        )
    if body is None:
        raise _not_found(response_id)
    return JSONResponse(body)


async def remove(sessions: Sessions, response_id: str, caller: Caller) -> Response:
    async with sessions() as db:
        result = await db.execute(
            delete(ModelResponse).where(
                ModelResponse.id == response_id, ModelResponse.user_id == caller.user_id
            )
        )
        await commit(db)
    if not getattr(result, "rowcount", 0):
        raise _not_found(response_id)
    return JSONResponse({"id": response_id, "object": "response", "deleted": True})
