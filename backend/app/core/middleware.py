"""Pure ASGI middleware (no BaseHTTPMiddleware: it breaks context propagation around streams).

`RequestContextMiddleware` gives every HTTP request an id (echoed as `X-Request-ID`), resolves the
client IP once (`scope["state"]["client_ip"]`) and enforces the body-size limit (413).
"""

from __future__ import annotations

import itertools
import os
import re
import secrets

import orjson
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.client_ip import ClientIPResolver
from app.core.errors import is_openai_path, openai_error_body

REQUEST_ID_HEADER = "x-request-id"
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class RequestIds:
    """Unique request ids without a system call each: a random per-process prefix and a counter."""

    def __init__(self) -> None:
        self._prefix = f"{secrets.token_hex(6)}{os.getpid():x}"
        self._counter = itertools.count(1)

    def next(self) -> str:
        return f"{self._prefix}-{next(self._counter):x}"


class BodyTooLargeError(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"Request body is larger than {limit} bytes")


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, *, resolver: ClientIPResolver, max_body_bytes: int) -> None:
        self.app = app
        self.resolver = resolver
        self.max_body_bytes = max_body_bytes
        self.ids = RequestIds()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        forwarded: list[str] = []
        request_id: str | None = None
        content_length: int | None = None
        for name, value in scope["headers"]:
            if name == b"x-forwarded-for":
                forwarded.append(value.decode("latin-1"))
            elif name == b"x-request-id":
                candidate = value.decode("latin-1")
                if _VALID_REQUEST_ID.match(candidate):
                    request_id = candidate
            elif name == b"content-length":
                try:
                    content_length = int(value)
                except ValueError:
                    content_length = None
        request_id = request_id or self.ids.next()
        client = scope.get("client")
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        state["client_ip"] = self.resolver.resolve(client[0] if client else None, forwarded)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers[REQUEST_ID_HEADER] = request_id
            await send(message)

        limit = self.max_body_bytes
        if content_length is not None and content_length > limit:
            await self._reject_too_large(scope, send_with_id, limit)
            return

        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLargeError(limit)
            return message

        await self.app(scope, limited_receive, send_with_id)

    async def _reject_too_large(self, scope: Scope, send: Send, limit: int) -> None:
        message = f"Request body is larger than {limit} bytes"
        if is_openai_path(scope.get("path", "")):
            body = openai_error_body(413, message, "payload_too_large")
        else:
            body = {"detail": message, "code": "payload_too_large"}
        payload = orjson.dumps(body)
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(payload)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})
