"""What one connection can make the server hold: head size and field count, the time to send a
head and a body, quiet keep-alive connections, and how many connections may be open.

The server is configured as `python -m app serve` configures it (small limits so the tests are
quick); the clients are raw sockets, since an HTTP client would not misbehave on purpose. Waits
are generous: they fail only if the server never acts.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.core.config import ServerSettings
from app.main import create_app
from tests.conftest import DatabaseTarget, make_settings
from tests.live import LiveServer

LIMITS = ServerSettings(
    _env_file=None,
    max_header_bytes=8 * 1024,
    max_headers=20,
    header_timeout_seconds=0.5,
    body_timeout_seconds=0.5,
    keepalive_timeout_seconds=1,
    max_connections=40,
)
PATIENCE = 15.0  # seconds to wait for something the server must do within about one second


@pytest.fixture
def server(tmp_path: Path, database: DatabaseTarget) -> Iterator[LiveServer]:
    live = LiveServer(LIMITS).start()
    live.mount(create_app(make_settings(tmp_path, database)))
    try:
        yield live
    finally:
        live.unmount()
        live.stop()


@contextlib.contextmanager
def connect(server: LiveServer) -> Iterator[socket.socket]:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=PATIENCE)
    try:
        yield sock
    finally:
        sock.close()


def answer(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (b"" if it closes at once)."""
    chunks = []
    with contextlib.suppress(ConnectionResetError):
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def one_response(sock: socket.socket) -> bytes:
    """One whole response (head and a Content-Length body) from a kept-alive connection."""
    raw = b""
    while b"\r\n\r\n" not in raw:
        raw += sock.recv(65536)
    head, _, body = raw.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.lower().split(b"\r\n")
        if line.startswith(b"content-length:")
    )
    while len(body) < length:
        body += sock.recv(65536)
    return head + b"\r\n\r\n" + body


def status(raw: bytes) -> int:
    return int(raw.split(b" ", 2)[1]) if raw.startswith(b"HTTP/1.1 ") else 0


def open_connections(server: LiveServer) -> int:
    return len(server.server.server_state.connections)


def wait_until_closed(server: LiveServer) -> None:
    deadline = time.monotonic() + PATIENCE
    while open_connections(server) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert open_connections(server) == 0, "the server still holds connections"


def test_a_head_within_the_limits_is_served(server: LiveServer) -> None:
    headers = "".join(f"X-Field-{i}: {'v' * 100}\r\n" for i in range(15))
    with connect(server) as sock:
        sock.sendall(
            f"GET /healthz HTTP/1.1\r\nHost: x\r\n{headers}Connection: close\r\n\r\n".encode()
        )
        assert status(answer(sock)) == 200


@pytest.mark.parametrize("chunk", [1024, 64 * 1024], ids=["small-reads", "large-reads"])
def test_a_header_that_never_ends_is_refused_431(server: LiveServer, chunk: int) -> None:
    """A header value that keeps coming: refused once past the limit, long before the client
    has sent 32 MiB (the server stops reading and closes)."""
    sent = 0
    with connect(server) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Long: ")
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            while sent < 32 * 1024 * 1024:
                sock.sendall(b"a" * chunk)
                sent += chunk
        raw = answer(sock)
    assert status(raw) == 431, raw[:200]
    assert sent < 32 * 1024 * 1024
    wait_until_closed(server)


@pytest.mark.parametrize(
    "head",
    [
        "".join(f"X-F{i}: v\r\n" for i in range(21)),  # one field too many
        "".join(f"X-F{i}: {'v' * 900}\r\n" for i in range(10)),  # complete, but 9 KiB
        f"X-One: {'v' * 9000}\r\n",
    ],
    ids=["too-many-fields", "too-large-in-one-read", "one-large-field"],
)
def test_a_head_past_the_limits_is_refused_431_and_never_reaches_the_app(
    server: LiveServer, head: str
) -> None:
    with connect(server) as sock:
        sock.sendall(f"POST /api/auth/login HTTP/1.1\r\nHost: x\r\n{head}\r\n".encode())
        raw = answer(sock)
    assert status(raw) == 431, raw[:200]
    assert b"connection: close" in raw.lower()


def test_a_slow_head_is_cut_off_408(server: LiveServer) -> None:
    """Slowloris: one byte at a time, never finishing within the head timeout."""
    request = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"s" * 200
    with connect(server) as sock:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            for byte in request:
                sock.sendall(bytes([byte]))
                time.sleep(0.02)
        assert status(answer(sock)) == 408
    wait_until_closed(server)


def test_a_connection_that_sends_nothing_is_closed(server: LiveServer) -> None:
    with connect(server) as sock:
        assert answer(sock) == b""  # closed without an answer: nothing was asked
    wait_until_closed(server)


def test_a_body_that_never_completes_is_cut_off(server: LiveServer) -> None:
    with connect(server) as sock:
        sock.sendall(
            b"POST /api/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b'Content-Length: 1000\r\n\r\n{"username": '
        )
        raw = answer(sock)
    assert status(raw) in (0, 408), raw[:200]
    wait_until_closed(server)


def test_a_quiet_keep_alive_connection_is_closed(server: LiveServer) -> None:
    with connect(server) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert status(one_response(sock)) == 200
        # A second request on the same connection is served (keep-alive works) …
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert status(one_response(sock)) == 200
        # … and then silence: the server closes it.
        assert answer(sock) == b""
    wait_until_closed(server)


def test_connections_past_the_limit_are_refused_503_and_idle_ones_let_go(
    server: LiveServer,
) -> None:
    socks = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(60)]
    try:
        for sock in socks:
            sock.settimeout(PATIENCE)
        answers = [answer(sock) for sock in socks]
    finally:
        for sock in socks:
            sock.close()
    refused = [raw for raw in answers if status(raw) == 503]
    assert len(refused) >= 60 - LIMITS.max_connections
    assert all(raw in (b"",) or status(raw) == 503 for raw in answers)
    wait_until_closed(server)


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


# The bound the README promises for this attack with the default limits (measured: see the note
# in README → Security; a server without the limits grew by 750 MB here).
MEMORY_BOUND_MIB = 64


@pytest.mark.slow
def test_a_real_server_under_header_and_idle_floods_lets_go_and_stays_bounded(
    tmp_path: Path, fresh_database: DatabaseTarget
) -> None:
    """`python -m app serve` with the default head limits: twenty connections each sending a
    32 MiB header that never ends, and 2,000 connections that send nothing. Every one is closed
    by the server, and its memory grows by less than the documented bound."""
    import threading

    from tests.processes import app_env, free_port, start_cli, wait_ready

    port = free_port()
    env = app_env(tmp_path, fresh_database, PORT=str(port), HEADER_TIMEOUT_SECONDS="2")
    proc = start_cli(["serve"], env)
    try:
        wait_ready(f"http://127.0.0.1:{port}", proc)
        before = _rss_mib(proc.pid)
        samples: list[float] = []
        sampling = threading.Event()

        def sample() -> None:
            while not sampling.is_set():
                samples.append(_rss_mib(proc.pid))
                time.sleep(0.02)

        sampler = threading.Thread(target=sample)
        sampler.start()

        def endless_header() -> None:
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", port), timeout=PATIENCE) as sock,
            ):
                sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Long: ")
                for _ in range(32 * 16):
                    sock.sendall(b"a" * 65536)

        floods = [threading.Thread(target=endless_header) for _ in range(20)]
        for thread in floods:
            thread.start()
        idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(2000)]
        for thread in floods:
            thread.join(timeout=60)
        try:
            for sock in idle:
                sock.settimeout(PATIENCE)
                assert answer(sock) == b"", "an idle connection was answered, not closed"
        finally:
            for sock in idle:
                sock.close()
            sampling.set()
            sampler.join()
        peak, after = max(samples), _rss_mib(proc.pid)
        assert peak - before < MEMORY_BOUND_MIB, (before, peak, after)
        assert after - before < MEMORY_BOUND_MIB, (before, peak, after)
    finally:
        proc.terminate()
        proc.communicate(timeout=60)
