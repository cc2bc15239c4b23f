"""`/api` refuses text with NUL characters (U+0000), in the path, the query or a JSON body.

PostgreSQL cannot store NUL in text, and no name, title, message or setting needs one; refusing it
here gives the caller a 422 naming the field, the same on every database, instead of a database
error. A NUL can only arrive escaped (`%00` in a URL, `\\u0000` in JSON), so requests without that
sequence — nearly all — pass after a byte search; only those with it are parsed to tell a real NUL
from the text `\\u0000` written out.

The search only works on the bytes the route will read, so the guard and the route must read the
body the same way: Python's JSON parser also takes UTF-16 and UTF-32 bodies and a UTF-8 byte order
mark, where `\\u0000` is not that byte sequence. JSON between systems is UTF-8 (RFC 8259), so a
JSON body in another encoding, or with a byte order mark, is refused here (415) instead. `/v1` is not affected: calls are relayed as sent, and the
call log stores what it must with NULs replaced.
"""

from __future__ import annotations

import json
from typing import Any

import orjson
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.middleware import BodyTooLargeError, reject

MESSAGE = "Text cannot contain NUL (\\u0000) characters"
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def _nul_path(value: Any, where: list[str | int]) -> list[str | int] | None:
    """Where the first NUL in a parsed JSON value is (a key or a string), or None.

    Walked with an explicit stack, not recursion: a body nested hundreds of levels deep (orjson
    reads up to 1024) must not exhaust Python's stack here, outside every error handler."""
    stack: list[tuple[Any, list[str | int]]] = [(value, where)]
    while stack:
        item, path = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return path
        elif isinstance(item, dict):
            for key in item:
                if "\x00" in key:
                    return [*path, key.replace("\x00", "\\u0000")]
            stack.extend((child, [*path, key]) for key, child in reversed(item.items()))
        elif isinstance(item, list):
            stack.extend((child, [*path, i]) for i, child in reversed(list(enumerate(item))))
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
        if _read_as_json(scope) and body and json.detect_encoding(body) != "utf-8":
            await _not_utf8()(scope, receive, send)
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


def _not_utf8() -> JSONResponse:
    return JSONResponse(
        {
            "detail": "A JSON body must be UTF-8, without a byte order mark",
            "code": "unsupported_encoding",
        },
        status_code=415,
    )


def _content_type(scope: Scope) -> bytes | None:
    headers: list[tuple[bytes, bytes]] = scope.get("headers", [])
    for name, value in headers:
        if name == b"content-type":
            return value.split(b";")[0].strip().lower()
    return None


def _read_as_json(scope: Scope) -> bool:
    """Whether FastAPI parses this body as JSON: no content type, or application/json or
    application/…+json."""
    kind = _content_type(scope)
    return (
        kind is None
        or kind == b"application/json"
        or (kind.startswith(b"application/") and kind.endswith(b"+json"))
    )


def _is_form(scope: Scope) -> bool:
    return _content_type(scope) == b"application/x-www-form-urlencoded"


def _replay(messages: list[Message], receive: Receive) -> Receive:
    pending = list(messages)

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay
