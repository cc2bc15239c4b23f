"""Pure ASGI middleware (no BaseHTTPMiddleware: it breaks context propagation around streams).

`RequestContextMiddleware` gives every HTTP request an id (echoed as `X-Request-ID`), resolves the
client IP once (`scope["state"]["client_ip"]`), asks the client guard (IP blacklist → 403, per-address
rate → 429) before any other work, enforces the body-size limit (413), and has the send watchdog
drop a response whose client stopped reading.
"""

from __future__ import annotations

import itertools
import os
import re
import secrets
from typing import Protocol

import orjson
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.client_ip import ClientIPResolver
from app.core.errors import (
    AppError,
    anthropic_error_body,
    is_anthropic_path,
    is_openai_path,
    openai_error_body,
)
from app.core.security_headers import SecurityHeaders
from app.core.send_watchdog import SendWatchdog

REQUEST_ID_HEADER = "x-request-id"
REQUEST_ID_HEADER_BYTES = REQUEST_ID_HEADER.encode()
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class ClientCheck(Protocol):
    """Who may send a request at all (the IP blacklist and per-address rate: `app.ipfilter`)."""

    async def check(self, client_ip: str, path: str, user_agent: bytes) -> AppError | None:
        """The error to answer with, or None to let the request through."""


class RequestIds:
    """Unique request ids without a system call each: a random per-process prefix and a counter."""

    def __init__(self) -> None:
        self._prefix = f"{secrets.token_hex(6)}{os.getpid():x}"
        self._counter = itertools.count(1)

    def next(self) -> str:
        return f"{self._prefix}-{next(self._counter):x}"


class BodyTooLargeError(HTTPException):
    """Raised from `receive` once the body passes the limit (FastAPI and `/v1` render it)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"Request body is larger than {limit} bytes")

    @property
    def error(self) -> AppError:
        return AppError(self.detail, code="payload_too_large")


class RequestContextMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        resolver: ClientIPResolver,
        guard: ClientCheck,
        max_body_bytes: int,
        watchdog: SendWatchdog | None = None,
        security_headers: SecurityHeaders | None = None,
    ) -> None:
        self.app = app
        self.security_headers = security_headers or SecurityHeaders()
        self.resolver = resolver
        self.guard = guard
        self.watchdog = watchdog
        self.max_body_bytes = max_body_bytes
        self.ids = RequestIds()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        forwarded: list[str] = []
        request_id: str | None = None
        content_length: int | None = None
        user_agent = b""
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
            elif name == b"user-agent":
                user_agent = value
        request_id = request_id or self.ids.next()
        client = scope.get("client")
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        client_ip = state["client_ip"] = self.resolver.resolve(
            client[0] if client else None, forwarded
        )

        id_header = (REQUEST_ID_HEADER_BYTES, request_id.encode("latin-1"))
        if self.watchdog is not None:
            send = self.watchdog.guard(send, request_id)

        security = self.security_headers

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                message["headers"] = [*headers, id_header, *security.for_response(headers)]
            await send(message)

        refusal = await self.guard.check(client_ip, scope["path"], user_agent)
        if refusal is not None:
            await reject(scope, send_with_id, refusal)
            return
        limit = self.max_body_bytes
        if content_length is not None and content_length > limit:
            await reject(scope, send_with_id, BodyTooLargeError(limit).error, 413)
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


async def reject(scope: Scope, send: Send, error: AppError, status: int | None = None) -> None:
    """Answer with `error` in the path's envelope (Anthropic's on its paths, OpenAI's on the rest of
    `/v1`, `{detail, code}` elsewhere),
    before the app has answered (413 also closes the connection)."""
    status = status or error.status_code
    path = scope.get("path", "")
    if is_anthropic_path(path):
        body = anthropic_error_body(status, error.message)
    elif is_openai_path(path):
        body = openai_error_body(status, error.message, error.code, error.param)
    else:
        body = {"detail": error.message, "code": error.code}
    payload = orjson.dumps(body)
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
    ]
    headers += [(k.lower().encode(), v.encode()) for k, v in error.headers.items()]
    if status == 413:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
