"""The HTTP server: uvicorn with the app's shutdown, its connection limits, and worker processes.

Kept out of `app/__main__.py`: worker processes are spawned and unpickle the server and config
classes by module name, which `__main__` is not in a child.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import sys
from pathlib import Path
from types import FrameType
from typing import Any, cast

import uvicorn
from uvicorn.supervisors.multiprocess import Multiprocess, Process

from app.composition import AppContext
from app.core import gc_policy
from app.core.app_secrets import ConfigError
from app.core.config import ServerSettings, Settings
from app.core.db import database_url, is_sqlite
from app.main import create_app
from app.serving.protocol import GatewayConfig, HttpLimits

METRICS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"


def http_limits(server: ServerSettings) -> HttpLimits:
    return HttpLimits(
        max_header_bytes=server.max_header_bytes,
        max_headers=server.max_headers,
        header_timeout=server.header_timeout_seconds,
        body_timeout=server.body_timeout_seconds,
        max_connections=server.max_connections,
    )


def uvicorn_config(server: ServerSettings, app: Any, **extra: Any) -> GatewayConfig:
    """The server's configuration; `extra` overrides uvicorn's options (tests, workers)."""
    options: dict[str, Any] = {
        "host": server.host,
        "port": server.port,
        "log_level": server.log_level,
        "access_log": server.access_log,
        "proxy_headers": False,  # the app resolves client IPs itself (TRUSTED_PROXIES)
        "server_header": False,
        "timeout_keep_alive": server.keepalive_timeout_seconds,
        # uvicorn's own limit, past the app's grace: the app ends its streams first.
        "timeout_graceful_shutdown": int(
            server.shutdown_delay_seconds + server.shutdown_grace_seconds + 10
        ),
    }
    return GatewayConfig(app, http_limits=http_limits(server), **(options | extra))


class GatewayServer(uvicorn.Server):
    """uvicorn's server with the app's shutdown: on a stop signal readiness turns 503 at once;
    after `SHUTDOWN_DELAY_SECONDS` the server stops accepting; running calls get
    `SHUTDOWN_GRACE_SECONDS`, then whatever still streams ends with a final event (see
    `AppContext.drain`). A second signal stops at once. Also says where it is listening."""

    def __init__(self, config: uvicorn.Config, banner: str = "", announce: bool = True) -> None:
        super().__init__(config)
        self.banner = banner
        self.announce = announce
        self._loop: asyncio.AbstractEventLoop | None = None
        self._draining = False

    def _ctx(self) -> AppContext | None:
        app: object = getattr(self.config, "loaded_app", None)
        for _ in range(5):  # uvicorn may wrap the app in its own middleware
            state = getattr(app, "state", None)
            if state is not None and hasattr(state, "ctx"):
                return cast(AppContext, state.ctx)
            app = getattr(app, "app", None)
        return None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        ctx, loop = self._ctx(), self._loop
        if self._draining or ctx is None or loop is None:
            super().handle_exit(sig, frame)
            return
        self._draining = True
        ctx.shutting_down = True
        settings = ctx.settings.server

        def stop_accepting() -> None:
            super(GatewayServer, self).handle_exit(sig, None)

        def begin() -> None:
            loop.create_task(
                ctx.drain(settings.shutdown_delay_seconds + settings.shutdown_grace_seconds)
            )
            loop.call_later(settings.shutdown_delay_seconds, stop_accepting)

        loop.call_soon_threadsafe(begin)

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().startup(sockets)
        if self.started:
            gc_policy.tune_for_serving()
            host = self.config.host
            shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host  # noqa: S104
            url = f"http://{shown}:{self.config.port}"
            if self.announce:
                print(f"\nAI Chat Gateway is ready: {url}  (API docs: {url}/docs)\n", flush=True)
                if self.banner:
                    print(self.banner.replace("{url}", url), flush=True)


def run(settings: Settings, banner: str = "") -> None:
    """Serve until stopped: one process, or `WORKERS` processes on one port."""
    if settings.server.workers > 1:
        run_workers(settings)
        return
    config = uvicorn_config(settings.server, create_app(settings))
    GatewayServer(config, banner).run()


def run_workers(settings: Settings) -> None:
    """Several worker processes on one port, each a whole app; Redis makes them behave as one."""
    workers = settings.server.workers
    if settings.redis.url is None:
        raise ConfigError(
            f"WORKERS={workers} needs REDIS_URL: rate limits, conversation locks, chat replies "
            "and circuit breakers must be shared between the processes (without Redis each "
            "worker would enforce its own limits). Set REDIS_URL, or run one worker."
        )
    if is_sqlite(database_url(settings)):
        print(
            f"Note: {workers} workers share one SQLite file: their writes take turns (they may "
            "wait, none is lost). Past a few thousand calls a second, or for more than two "
            "workers, use PostgreSQL (DATABASE_URL); see docs/operations.md.",
            file=sys.stderr,
        )
    metrics_dir = Path(
        os.environ.setdefault(METRICS_DIR_ENV, str(settings.server.data_dir / "metrics"))
    )
    shutil.rmtree(metrics_dir, ignore_errors=True)  # values of earlier runs' processes
    metrics_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    config = uvicorn_config(settings.server, "app.main:create_app", factory=True, workers=workers)
    sock = config.bind_socket()
    print(
        f"Starting {workers} workers on {settings.server.host}:{settings.server.port}", flush=True
    )
    GatewayWorkers(config, sockets=[sock]).run()


class GatewayWorkers(Multiprocess):
    """uvicorn's worker supervisor, with the app's shutdown behaviour in every worker."""

    def init_processes(self) -> None:
        for _ in range(self.processes_num):
            process = Process(self.config, self.sockets)
            # The worker runs this server (uvicorn would build a plain one in the child).
            process._server = GatewayServer(self.config, announce=False)
            process.start()
            self.processes.append(process)
