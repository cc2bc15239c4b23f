"""`/api` refuses text with NUL characters (U+0000), in the path, the query or a JSON body.

PostgreSQL cannot store NUL in text, and no name, title, message or setting needs one; refusing it
here gives the caller a 422 naming the field, the same on every database, instead of a database
error. A NUL can only arrive escaped (`%00` in a URL, `\\u0000` in JSON), so requests without that
sequence — nearly all — pass after a byte search; only those with it are parsed to tell a real NUL
from the text `\\u0000` written out. `/v1` is not affected: calls are relayed as sent, and the
call log stores what it must with NULs replaced.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.middleware import BodyTooLargeError, reject

MESSAGE = "Text cannot contain NUL (\\u0000) characters"
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def _nul_path(value: Any, where: list[str | int]) -> list[str | int] | None:
    """Where the first NUL in a parsed JSON value is (a key or a string), or None."""
    if isinstance(value, str):
        return where if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            if "\x00" in key:
                return [*where, key.replace("\x00", "\\u0000")]
            found = _nul_path(item, [*where, key])
            if found is not None:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = _nul_path(item, [*where, index])
            if found is not None:
                return found
    return None


def _refusal(loc: list[str | int]) -> JSONResponse:
    return JSONResponse(
        {
            "detail": [{"loc": loc, "msg": MESSAGE, "type": "nul_character"}],
            "code": "nul_character",
        },
        status_code=422,
    )


class NulGuard:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/api/"):
            await self.app(scope, receive, send)
            return
        if b"%00" in scope.get("raw_path", b"") or "\x00" in scope["path"]:
            await _refusal(["path"])(scope, receive, send)
            return
        if b"%00" in scope.get("query_string", b""):
            await _refusal(["query"])(scope, receive, send)
            return
        if scope["method"] not in BODY_METHODS:
            await self.app(scope, receive, send)
            return
        # Read the body (its size is already limited by the request-context middleware), then
        # hand it on unchanged.
        chunks: list[bytes] = []
        while True:
            try:
                message = await receive()
            except BodyTooLargeError as exc:  # read here, ahead of FastAPI's error handling
                await reject(scope, send, exc.error, 413)
                return
            if message["type"] != "http.request":
                await self.app(scope, _replay([message], receive), send)
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if b"%00" in body and _is_form(scope):
            await _refusal(["body"])(scope, receive, send)
            return
        if b"\\u0000" in body:
            try:
                parsed = orjson.loads(body)
            except orjson.JSONDecodeError:
                parsed = None  # not JSON: the route's own parsing says what is wrong
            found = _nul_path(parsed, ["body"])
            if found is not None:
                await _refusal(found)(scope, receive, send)
                return
        await self.app(scope, _replay([{"type": "http.request", "body": body}], receive), send)


def _is_form(scope: Scope) -> bool:
    headers: list[tuple[bytes, bytes]] = scope.get("headers", [])
    for name, value in headers:
        if name == b"content-type":
            return value.split(b";")[0].strip().lower() == b"application/x-www-form-urlencoded"
    return False


def _replay(messages: list[Message], receive: Receive) -> Receive:
    pending = list(messages)

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay
