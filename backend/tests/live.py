"""Live-server fixtures: the app under uvicorn on a free loopback port, and the mock upstream.

Both run in their own threads with their own event loops, so tests can use the official `openai`
SDK synchronously or asynchronously against a real HTTP server.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from sqlalchemy import select

from app.core.context import AppContext
from app.devtools.loop_thread import finish_loop
from app.devtools.mock_upstream import MockServer
from app.main import create_app
from app.models import CallLog, Channel
from tests.conftest import (
    ADMIN_PASSWORD,
    ADMIN_USERNAME,
    DatabaseTarget,
    empty_database,
    make_settings,
)
from tests.processes import free_port

T = TypeVar("T")
UPSTREAM_KEY = "sk-upstream-SENTINEL-7d41c9e2b8a3"


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


class LiveGateway:
    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.port = free_port()
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="debug", lifespan="on"
        )
        self.server = uvicorn.Server(config)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.url = f"http://127.0.0.1:{self.port}"
        self.http = httpx.Client(base_url=self.url, timeout=30)
        self._admin: dict[str, str] | None = None
        self.mock: MockServer | None = None

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self.server.serve())
        finally:
            finish_loop(self.loop)

    def start(self) -> LiveGateway:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the gateway did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.http.close()
        self.server.should_exit = True
        self.thread.join(timeout=30)
        # Anything the server left open (a socket, a transport) is reported now, against the
        # test that stopped it, rather than whenever the collector next runs in a later test.
        gc.collect()

    @property
    def ctx(self) -> AppContext:
        ctx: AppContext = self.app.state.ctx
        return ctx

    def run(self, factory: Callable[[], Awaitable[T]], timeout: float = 30) -> T:
        """Run a coroutine on the server's loop (where its database engine lives)."""
        future: Future[T] = asyncio.run_coroutine_threadsafe(factory(), self.loop)  # type: ignore[arg-type]
        return future.result(timeout)

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
def gateway_factory(tmp_path: Path, database: DatabaseTarget) -> Iterator[GatewayFactory]:
    started: list[LiveGateway] = []

    def build(**overrides: dict[str, Any]) -> LiveGateway:
        runtime = {"breaker_cooldown_seconds": 30.0, **overrides.pop("runtime", {})}
        settings = make_settings(
            tmp_path / f"gw{len(started)}", database, runtime=runtime, **overrides
        )
        live = LiveGateway(create_app(settings)).start()
        started.append(live)
        return live

    yield build
    for live in reversed(started):
        live.stop()
    if started:
        asyncio.run(empty_database(database))


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
