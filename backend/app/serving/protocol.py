"""HTTP/1.1 with bounds on what a client can make the server hold: uvicorn's httptools protocol,
plus limits uvicorn does not have.

uvicorn (0.55) bounds neither the size of a request head nor the time to send it, and starts its
keep-alive timer only after a first response: a client that connects and sends nothing, or sends a
header that never ends, is held for ever, and httptools buffers the unfinished header (twenty
connections each sending 32 MiB took a server from 181 MB to 932 MB). Here:

- a request head (request line and headers) may be `max_header_bytes` long with at most
  `max_headers` fields; more is answered 431 and the connection closed. The parser is fed at most
  one socket read (asyncio reads ≤ 256 KiB) past the bound before it is refused;
- the head must arrive within `header_timeout` of the connection opening, or of the previous
  response (a keep-alive connection that stays quiet is closed by uvicorn's `timeout_keep_alive`);
  otherwise 408 (or a plain close if nothing was sent) — this bounds slow-header attacks;
- the body must arrive within `body_timeout` of the head; otherwise the connection is closed and
  the app sees the client leave;
- beyond `max_connections` open connections a new one is answered 503 and closed at once.

So an idle or slow connection is held at most `header_timeout` (or `body_timeout` once its head is
in), and holds at most `max_header_bytes` plus one read of unparsed head.

Also: a response's head is held back until its body's first write (`HeadFirstTransport`), so a
small answer leaves in one system call rather than two.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from app.core.timers import WheelTimer, timer_wheel

_REASONS = {
    408: b"Request Timeout",
    431: b"Request Header Fields Too Large",
    503: b"Service Unavailable",
}


@dataclass(frozen=True)
class HttpLimits:
    max_header_bytes: int = 64 * 1024
    max_headers: int = 100
    header_timeout: float = 10.0
    body_timeout: float = 60.0
    max_connections: int = 4096


class GatewayConfig(uvicorn.Config):
    """uvicorn's config with the limits the protocol reads (a module-level class, so worker
    processes can unpickle it)."""

    def __init__(self, app: Any, *, http_limits: HttpLimits, **kwargs: Any) -> None:
        super().__init__(app, http=BoundedHttpProtocol, **kwargs)
        self.http_limits = http_limits


class HeadFirstTransport:
    """What a request's response is written to: the first write (the response head) is held
    until the next one — the body, usually written in the same turn of the loop — and both go out
    in one system call; whatever is held at the end of the loop's turn is written then."""

    __slots__ = ("_held", "_loop", "_pending", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None
        self._pending = True  # the first write is yet to come

    def write(self, data: bytes) -> None:
        if self._pending:
            self._pending = False
            self._held = data
            self._loop.call_soon(self.flush)
            return
        held = self._held
        if held is not None:
            self._held = None
            data = held + data
        self._transport.write(data)

    def flush(self) -> None:
        held = self._held
        if held is not None:
            self._held = None
            if not self._transport.is_closing():
                self._transport.write(held)

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        """Drop the connection at once, with anything unsent (see `app.core.send_watchdog`)."""
        self._held = None
        self._transport.abort()


class BoundedHttpProtocol(HttpToolsProtocol):
    def __init__(self, config: uvicorn.Config, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, *args, **kwargs)
        self.limits: HttpLimits = getattr(config, "http_limits", HttpLimits())
        self._in_head = True  # between requests, or reading a request's head
        self._head_bytes = 0  # bytes received since the request began (an upper bound)
        self._head_size = 0  # the parsed head's size, as the parser reports its parts
        self._head_fields = 0
        self._too_large: str | None = None  # why the head is refused, once it is
        self._timer: WheelTimer | None = None
        self._refused = False
        self._awaiting_body = False  # a request's head is in, its body not yet
        self._wheel = timer_wheel(self.loop)

    # ── connection ─────────────────────────────────────────────────────────────────────────────
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.limits.max_connections:
            self._refuse(503, "Too many open connections.")
            return
        self._arm(self.limits.header_timeout, self._head_too_slow)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        if self._in_head:
            self._head_bytes += len(data)
            if self._timer is None:  # the first byte of a request after a keep-alive pause
                self._arm(self.limits.header_timeout, self._head_too_slow)
        super().data_received(data)
        if self._refused or self.transport.is_closing():
            return
        if self._awaiting_body and self._timer is None:
            # The head is in and the body is not (a small body comes with its head: no timer).
            self._arm(self.limits.body_timeout, self._body_too_slow)
        if (
            self._too_large is None
            and self._in_head
            and self._head_bytes > self.limits.max_header_bytes
        ):
            self._too_large = "Request head too large."
        if self._too_large is not None:
            self._refuse(431, self._too_large)

    # ── parser callbacks ───────────────────────────────────────────────────────────────────────
    def on_message_begin(self) -> None:
        self._head_size, self._head_fields, self._too_large = 0, 0, None
        super().on_message_begin()

    def on_url(self, url: bytes) -> None:
        self._head_size += len(url)
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_size += len(name) + len(value) + 4
        self._head_fields += 1
        if self._head_fields > self.limits.max_headers:
            self._too_large = "Too many header fields."
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        if self._too_large is None and self._head_size > self.limits.max_header_bytes:
            self._too_large = "Request head too large."
        if self._too_large is not None:
            return  # refused once the parser returns; the app never sees this request
        self._in_head = False
        self._disarm()
        super().on_headers_complete()
        if self.cycle is not None:
            self.cycle.transport = HeadFirstTransport(self.transport, self.loop)  # type: ignore[assignment]
        self._awaiting_body = True

    def on_body(self, body: bytes) -> None:
        if self._too_large is None:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if self._too_large is not None:
            return
        self._disarm()
        self._in_head, self._head_bytes, self._awaiting_body = True, 0, False
        super().on_message_complete()

    def on_response_complete(self) -> None:
        """uvicorn's, with the keep-alive timer on the timer wheel (`app.core.timers`): a loop
        timer per response costs more than the rest of this."""
        self.server_state.total_requests += 1
        if self.transport.is_closing():
            return
        self._unset_keepalive_if_required()
        self.flow.resume_reading()
        if self.pipeline:
            cycle, app = self.pipeline.pop()
            self._start_asgi_task(cycle, app)
        else:
            self.timeout_keep_alive_task = self._wheel.call_later(  # type: ignore[assignment]
                self.timeout_keep_alive, self.timeout_keep_alive_handler
            )

    # ── limits ─────────────────────────────────────────────────────────────────────────────────
    def _arm(self, seconds: float, handler: Any) -> None:
        self._disarm()
        self._timer = self._wheel.call_later(seconds, handler)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _head_too_slow(self) -> None:
        self._timer = None
        if self._head_bytes == 0:
            self._close()  # nothing asked, nothing to answer
        else:
            self._refuse(408, "Request head not received in time.")

    def _body_too_slow(self) -> None:
        self._timer = None
        responding = self.cycle is not None and self.cycle.response_started
        if responding:
            self._close()
        else:
            self._refuse(408, "Request body not received in time.")

    def _close(self) -> None:
        self._refused = True
        if not self.transport.is_closing():
            self.transport.close()

    def _refuse(self, status: int, message: str) -> None:
        """Answer `status` with connection: close, unless a response already started."""
        self._refused = True
        self._disarm()
        if self.transport.is_closing():
            return
        if self.cycle is None or not self.cycle.response_started:
            body = message.encode()
            self.transport.write(
                b"HTTP/1.1 %d %s\r\n" % (status, _REASONS[status])
                + b"content-type: text/plain; charset=utf-8\r\n"
                + b"content-length: %d\r\nconnection: close\r\n\r\n" % len(body)
                + body
            )
        self.transport.close()
