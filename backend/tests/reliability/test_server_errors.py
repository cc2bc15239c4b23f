"""An unexpected error is answered 500 and the connection lives on (keep-alive).

uvicorn closed a connection whenever an exception came out of the app after its response was
sent — which Starlette does after every 500 — so the client's next request on that connection
was reset. Raw sockets, so the test sees exactly what happens to the connection.
"""

from __future__ import annotations

import socket

import pytest

from tests.live import LiveGateway


def _exchange(sock: socket.socket, path: str) -> bytes:
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    raw = b""
    while b"\r\n\r\n" not in raw:
        chunk = sock.recv(65536)
        assert chunk, "the server closed the connection"
        raw += chunk
    head, _, body = raw.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.lower().split(b"\r\n")
        if line.startswith(b"content-length:")
    )
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, "the server closed the connection mid-body"
        body += chunk
    return head


class _Broken:
    @property
    def available(self) -> bool:
        raise RuntimeError("an unexpected failure")


@pytest.mark.parametrize("where", ["route", "middleware"])
def test_after_a_500_the_next_request_on_the_connection_is_served(
    gateway: LiveGateway, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    if where == "route":
        monkeypatch.setattr(gateway.ctx, "account_mail", _Broken())
        failing = "/api/settings/public"
    else:  # outside the app's handlers: the NUL check itself fails
        from app.core import nul_guard

        def broken(*_args: object) -> None:
            raise RuntimeError("an unexpected failure")

        monkeypatch.setattr(nul_guard, "_refusal", broken)
        failing = "/api/users?q=%00"
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=10) as sock:
        assert _exchange(sock, failing).startswith(b"HTTP/1.1 500")
        assert _exchange(sock, "/healthz").startswith(b"HTTP/1.1 200")
        assert _exchange(sock, failing).startswith(b"HTTP/1.1 500")
        assert _exchange(sock, "/readyz").startswith(b"HTTP/1.1 200")
