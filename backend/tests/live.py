"""Live-server fixtures: the app under uvicorn on a loopback port, and the mock upstream.

Both run in their own threads with their own event loops, so tests can use the official `openai`
SDK synchronously or asynchronously against a real HTTP server.

Starting and stopping uvicorn (a thread, a loop, a socket, its shutdown polling) cost more than most
tests that use it, so each test process keeps a small pool of `LiveServer`s for the whole session.
A test's app is mounted on a free one — created and started with its own lifespan, exactly as
uvicorn would — and unmounted when the test ends the way uvicorn shuts down: every connection told
to close, their requests finished, then the app's lifespan exit. The next test gets a new app (new
settings, new in-memory state) on the same socket.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import Future
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from sqlalchemy import select
from starlette.types import Receive, Scope, Send

from app.composition import AppContext
from app.core.config import ServerSettings
from app.devtools.loop_thread import finish_loop
from app.devtools.mock_upstream import MockServer
from app.main import create_app
from app.models import CallLog, Channel
from app.serving.server import uvicorn_config
from tests.conftest import (
    ADMIN_PASSWORD,
    ADMIN_USERNAME,
    DatabaseTarget,
    make_settings,
)

T = TypeVar("T")
UPSTREAM_KEY = "sk-upstream-SENTINEL-7d41c9e2b8a3"
# How long an unmount waits for the previous test's connections to finish before closing them.
DRAIN_SECONDS = 30.0


@pytest.fixture
def mock_upstream() -> Iterator[MockServer]:
    server = MockServer().start()
    yield server
    server.stop()


class LogCapture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


def collect_garbage() -> None:
    """Collect now, so anything a test left open (a socket, a transport) is reported against it
    rather than whenever the collector next runs in a later test. What survives is frozen: the
    next collection looks only at objects made after this one, which keeps it cheap."""
    gc.collect()
    gc.freeze()


class LiveServer:
    """uvicorn on its own loopback socket and thread, serving whichever app is mounted.

    It is configured as `python -m app serve` configures it (`app.serving.server.uvicorn_config`:
    the same HTTP protocol, limits and timeouts), from `server` settings or the defaults.
    """

    def __init__(self, server: ServerSettings | None = None) -> None:
        # IPPROTO_TCP given explicitly: asyncio turns Nagle off (TCP_NODELAY) only on accepted
        # sockets whose protocol says TCP, and without it every response waits ~40 ms for an ACK.
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind(("127.0.0.1", 0))
        self.port = int(self._socket.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn_config(
            server or ServerSettings(_env_file=None),
            self._dispatch,
            host="127.0.0.1",
            port=self.port,
            log_level="debug",
            lifespan="off",
            interface="asgi3",
        )
        self.server = uvicorn.Server(config)
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name=f"live-{self.port}", daemon=True)
        self.app: FastAPI | None = None
        self._lifespan: AbstractAsyncContextManager[Any] | None = None

    async def _dispatch(self, scope: Scope, receive: Receive, send: Send) -> None:
        app = self.app
        if app is None:  # between two tests
            await send({"type": "http.response.start", "status": 503, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        await app(scope, receive, send)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self.server.serve(sockets=[self._socket]))
        finally:
            finish_loop(self.loop)

    def start(self) -> LiveServer:
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the live server did not start")
            time.sleep(0.005)
        return self

    def run(self, factory: Callable[[], Awaitable[T]], timeout: float = 30) -> T:
        """Run a coroutine on the server's loop (where the mounted app's database engine lives)."""
        future: Future[T] = asyncio.run_coroutine_threadsafe(factory(), self.loop)  # type: ignore[arg-type]
        return future.result(timeout)

    def mount(self, app: FastAPI) -> None:
        """Start `app`'s lifespan on the server's loop, then serve it."""

        async def start() -> None:
            lifespan = app.router.lifespan_context(app)
            await lifespan.__aenter__()
            self._lifespan, self.app = lifespan, app

        self.run(start)

    def unmount(self) -> None:
        """As uvicorn shuts down: connections asked to close, running requests finished, then the
        app's lifespan exit. The socket stays open for the next app."""

        async def stop() -> None:
            state = self.server.server_state
            for connection in list(state.connections):
                connection.shutdown()
            deadline = self.loop.time() + DRAIN_SECONDS
            # uvicorn's own shutdown polls the same way (it has no event for "all closed").
            while (state.connections or state.tasks) and self.loop.time() < deadline:  # noqa: ASYNC110
                await asyncio.sleep(0.005)
            for connection in list(state.connections):  # still open after the wait: close
                transport = getattr(connection, "transport", None)
                if transport is not None:
                    transport.close()
            self.app = None
            lifespan, self._lifespan = self._lifespan, None
            if lifespan is not None:
                await lifespan.__aexit__(None, None, None)

        self.run(stop, timeout=DRAIN_SECONDS + 30)

    def stop(self) -> None:
        self.server.should_exit = True
        self._thread.join(timeout=30)


class ServerPool:
    """The live servers of this test process; a test takes as many as it runs apps at once."""

    def __init__(self) -> None:
        self._idle: list[LiveServer] = []
        self._all: list[LiveServer] = []

    def take(self) -> LiveServer:
        if self._idle:
            return self._idle.pop()
        server = LiveServer().start()
        self._all.append(server)
        return server

    def give_back(self, server: LiveServer) -> None:
        self._idle.append(server)

    def close(self) -> None:
        for server in self._all:
            server.stop()


@pytest.fixture(scope="session")
def live_servers() -> Iterator[ServerPool]:
    pool = ServerPool()
    yield pool
    pool.close()


class LiveGateway:
    """An app served over real HTTP by a pooled `LiveServer`."""

    def __init__(self, app: FastAPI, pool: ServerPool) -> None:
        self.app = app
        self._pool = pool
        self._server = pool.take()
        self.port = self._server.port
        self.url = self._server.url
        self.http = httpx.Client(base_url=self.url, timeout=30)
        self._admin: dict[str, str] | None = None
        self.mock: MockServer | None = None

    def start(self) -> LiveGateway:
        self._server.mount(self.app)
        return self

    def stop(self) -> None:
        self.http.close()
        self._server.unmount()
        self._pool.give_back(self._server)
        collect_garbage()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self._server.loop

    def run(self, factory: Callable[[], Awaitable[T]], timeout: float = 30) -> T:
        """Run a coroutine on the server's loop (where its database engine lives)."""
        return self._server.run(factory, timeout)

    @property
    def ctx(self) -> AppContext:
        ctx: AppContext = self.app.state.ctx
        return ctx

    # ── admin helpers over HTTP ───────────────────────────────────────────────────────────────
    @property
    def admin(self) -> dict[str, str]:
        if self._admin is None:
            response = self.http.post(
                "/api/auth/login", json={"username": ADMIN_USERNAME, "password": ADMIN_PASSWORD}
            )
            response.raise_for_status()
            self._admin = {"Authorization": f"Bearer {response.json()['access_token']}"}
        return self._admin

    def create_channel(self, **fields: Any) -> dict[str, Any]:
        body = {"name": "mock", "api_key": UPSTREAM_KEY, "models": ["mock-gpt"], **fields}
        response = self.http.post("/api/admin/channels", json=body, headers=self.admin)
        assert response.status_code == 201, response.text
        return dict(response.json())

    def create_key(self, **fields: Any) -> str:
        response = self.http.post("/api/keys", json={"name": "test", **fields}, headers=self.admin)
        assert response.status_code == 201, response.text
        return str(response.json()["key"])

    def create_user_key(self, username: str | None = None) -> str:
        """An API key of a new ordinary user (not the admin)."""
        name = (
            username
            or f"user{len(self.http.get('/api/admin/users', headers=self.admin).json()['items'])}"
        )
        password = "correct horse battery"
        created = self.http.post(
            "/api/admin/users",
            json={"username": name, "password": password, "role": "user", "status": "active"},
            headers=self.admin,
        )
        assert created.status_code == 201, created.text
        login = self.http.post("/api/auth/login", json={"username": name, "password": password})
        token = {"Authorization": f"Bearer {login.json()['access_token']}"}
        key = self.http.post("/api/keys", json={"name": "own"}, headers=token)
        assert key.status_code == 201, key.text
        return str(key.json()["key"])

    def create_failing_channels(self, mock: MockServer, count: int = 4, status: int = 503) -> None:
        """`count` channels serving `mock-gpt` whose upstreams all answer `status`."""
        for index in range(count):
            name = f"failing{index}"
            mock.set_profile(name, status=status)
            self.create_channel(name=name, base_url=mock.base_url(name))

    def channel(self, channel_id: int) -> dict[str, Any]:
        return dict(self.http.get(f"/api/admin/channels/{channel_id}", headers=self.admin).json())

    def call_logs(self) -> list[CallLog]:
        async def read() -> list[CallLog]:
            await self.ctx.call_logs.flush()
            async with self.ctx.sessionmaker() as db:
                return list((await db.scalars(select(CallLog).order_by(CallLog.id))).all())

        return self.run(read)

    def wait_for_logs(self, count: int, timeout: float = 10) -> list[CallLog]:
        deadline = time.monotonic() + timeout
        while True:
            rows = self.call_logs()
            if len(rows) >= count or time.monotonic() > deadline:
                return rows
            time.sleep(0.05)

    def channels_in_db(self) -> list[Channel]:
        async def read() -> list[Channel]:
            async with self.ctx.sessionmaker() as db:
                return list((await db.scalars(select(Channel).order_by(Channel.id))).all())

        return self.run(read)


GatewayFactory = Callable[..., LiveGateway]


@pytest.fixture
def gateway_factory(
    tmp_path: Path, database: DatabaseTarget, live_servers: ServerPool
) -> Iterator[GatewayFactory]:
    started: list[LiveGateway] = []

    def build(**overrides: dict[str, Any]) -> LiveGateway:
        runtime = {"breaker_cooldown_seconds": 30.0, **overrides.pop("runtime", {})}
        settings = make_settings(
            tmp_path / f"gw{len(started)}", database, runtime=runtime, **overrides
        )
        live = LiveGateway(create_app(settings), live_servers)
        started.append(live)
        return live.start()

    yield build
    for live in reversed(started):
        live.stop()


@pytest.fixture
def gateway(gateway_factory: GatewayFactory, mock_upstream: MockServer) -> LiveGateway:
    live = gateway_factory()
    live.mock = mock_upstream
    return live


@pytest.fixture
def log_capture() -> Iterator[LogCapture]:
    """Every log record, at every level, from every logger, while the test runs."""
    handler = LogCapture()
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    app_logger = logging.getLogger("app")
    old_levels = (root.level, app_logger.level)
    root.addHandler(handler)
    app_logger.addHandler(handler)
    root.setLevel(logging.DEBUG)
    app_logger.setLevel(logging.DEBUG)
    yield handler
    root.removeHandler(handler)
    app_logger.removeHandler(handler)
    root.setLevel(old_levels[0])
    app_logger.setLevel(old_levels[1])
