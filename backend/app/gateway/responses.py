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
from app.models import ModelResponse
from app.models.base import utcnow

Sessions = async_sessionmaker[AsyncSession]
logger = logging.getLogger(__name__)


def _not_found(response_id: str) -> NotFoundError:
    return NotFoundError(
        f"No response with id '{response_id[:64]}' was found", code="response_not_found"
    )


async def _earlier(sessions: Sessions, response_id: str, caller: Caller) -> list[dict[str, Any]]:
    async with sessions() as db:
        row = await db.scalar(
            select(ModelResponse.messages).where(
                ModelResponse.id == response_id, ModelResponse.user_id == caller.user_id
            )
        )
    if row is None:
        error = _not_found(response_id)
        error.param = "previous_response_id"
        raise error
    return list(row)


class Turn:
    """One `POST /v1/responses`: its request, its id, and how its answer is kept."""

    def __init__(self, sessions: Sessions, store: ResponseStore, caller: Caller) -> None:
        self._sessions = sessions
        self._store = store
        self._caller = caller
        self.id = fmt.new_id("resp")
        self.body: dict[str, Any] = {}
        self.request: ModelRequest | None = None

    async def prepare(self, raw: bytes) -> Callable[[bytes], ModelRequest]:
        """The `parse` for `relay_call`: the request, with the earlier conversation in front (a
        refusal is raised from it, so the call is logged as refused)."""
        try:
            self.body, request = fmt.parse_responses_request(raw)
            previous = self.body.get("previous_response_id")
            earlier = await _earlier(self._sessions, previous, self._caller) if previous else []
            fmt.complete_request(request, self.body, earlier)
        except AppError as error:
            refusal = error

            def refuse(_raw: bytes) -> ModelRequest:
                raise refusal

            return refuse
        self.request = request
        return lambda _raw: request

    async def keep(self, output: list[dict[str, Any]], response: dict[str, Any]) -> None:
        """Keep the answer for `GET` and follow-ups (unless `store` is false). A failure to keep
        it is logged; the caller still gets the answer."""
        if self.body.get("store", True) is False or self.request is None:
            return
        row = {
            "id": self.id,
            "user_id": self._caller.user_id,
            "api_key_id": self._caller.key_id,
            "created_at": utcnow(),
            "model": str(self.body.get("model"))[:256],
            "messages": [*self.request.messages, fmt.assistant_message(output)],
            "body": response,
        }
        try:
            await self._store.keep(row)
        except Exception:
            logger.exception("Could not keep response %s", self.id)

    @property
    def answer(self) -> Answer:
        async def answer(raw: bytes, _request: ModelRequest) -> Response:
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
            return self._frames(call)

        return frames

    async def _frames(self, call: ModelCall) -> AsyncIterator[bytes]:
        translator = fmt.ResponsesStream(self.body, self.id)
        async with contextlib.aclosing(
            call.events(include_usage=True, relay=True, deltas=False)
        ) as events:
            async for event in events:
                if type(event) is Relay:
                    frames = [f for payload in event.payloads for f in translator.feed(payload)]
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
