"""Test fixtures.

The suite runs on SQLite by default and, for the tests that reach a database, on PostgreSQL when
`TEST_DATABASE_URL` is set (`make test` does both). Each test process (pytest-xdist worker) has one
database for the session, migrated and seeded once; every test finds it as a first start leaves it,
and the tables it wrote are put back afterwards (`tests/database.py`). Apps are built per test (they
are cheap; their in-memory state — caches, limiters, breakers — must not leak between tests), and
live servers are pooled per process (`tests/live.py`). `TEST_REDIS_URL` enables the Redis-backed
tests. When a service named by these variables is unreachable, the tests that need it skip with the
reason — except under `CI=true`, where that is a failure.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from app.core.config import (
    AdminSettings,
    AuthSettings,
    CallLogSettings,
    ChatSettings,
    DatabaseSettings,
    GatewaySettings,
    MailSettings,
    MetricsSettings,
    RedisSettings,
    SecuritySettings,
    ServerSettings,
    Settings,
)
from app.core.runtime_values import RuntimeDefaults
from app.main import create_app
from tests.database import (
    TEST_DATABASE_URL,
    DatabaseTarget,
    SharedDatabase,
    drop_pg_schema,
    new_pg_schema,
    unavailable,
)

# Live-server fixtures (uvicorn on a free port, the mock upstream) and real server processes, for
# every test package.
pytest_plugins = ["tests.processes", "tests.live", "tests.mail_server"]

TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL") or None

# Fixtures that put a real server on a socket (in this process or another one).
LIVE_FIXTURES = {"live_servers", "mock_upstream", "smtp_server", "two_processes"}
DATABASE_FIXTURES = {"database", "fresh_database"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test by what it reaches: `live` (a server on a socket, or server processes:
    marked `slow` by hand) and `db` (a database). `make test-fast` leaves out `live` and `slow`;
    the PostgreSQL run takes only `db` (see docs/development.md, Testing)."""
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        if names & LIVE_FIXTURES or item.get_closest_marker("slow"):
            item.add_marker(pytest.mark.live)
        if names & DATABASE_FIXTURES:
            item.add_marker(pytest.mark.db)


ADMIN_USERNAME = "root-admin"
ADMIN_PASSWORD = "admin-pass-Ω-1234"
SIGNING_KEY = "test-signing-key-7f3a9c1e5b2d8046af1c3e5b7d9f0a2c"
ENCRYPTION_KEY = "Zk1xQmR6b1hYc0FvQ0pHNnU3dUF0b2xWd2JvTnBkNkE="


async def _first_start(target: DatabaseTarget, data_dir: Path) -> None:
    """Migrate and seed `target` as the app's first start does."""
    app = create_app(make_settings(data_dir, target, database={"auto_migrate": True}))
    async with app.router.lifespan_context(app):
        pass


@pytest.fixture(scope="session")
def database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SharedDatabase]:
    """This process's database: migrated and seeded once; each test leaves it as it found it."""
    if TEST_DATABASE_URL:
        schema = new_pg_schema()
        shared = SharedDatabase(TEST_DATABASE_URL, schema)
    else:
        path = tmp_path_factory.mktemp("db") / "app.db"
        shared = SharedDatabase(f"sqlite+aiosqlite:///{path}")
    asyncio.run(_first_start(shared, tmp_path_factory.mktemp("first-start")))
    asyncio.run(shared.take_snapshot())
    SharedDatabase.current = shared
    yield shared
    SharedDatabase.current = None
    if shared.pg_schema:
        drop_pg_schema(shared.pg_schema)


@pytest.fixture(autouse=True)
def _put_database_back(request: pytest.FixtureRequest) -> Iterator[None]:
    """After a test that used the shared database (and after its apps have stopped, since this
    fixture is set up first and so torn down last): the tables it wrote back to the snapshot."""
    yield
    if "database" in request.fixturenames and SharedDatabase.current is not None:
        asyncio.run(SharedDatabase.current.restore())


@pytest.fixture
def fresh_database(tmp_path: Path) -> Iterator[DatabaseTarget]:
    """An empty database of this test's own (a first start, or server processes of its own)."""
    if TEST_DATABASE_URL:
        schema = new_pg_schema()
        yield DatabaseTarget(TEST_DATABASE_URL, schema)
        drop_pg_schema(schema)
    else:
        yield DatabaseTarget(f"sqlite+aiosqlite:///{tmp_path / 'own.db'}")


@pytest.fixture
def redis_url() -> str:
    if not TEST_REDIS_URL:
        unavailable("TEST_REDIS_URL is not set")
    assert TEST_REDIS_URL
    import redis

    try:
        redis.Redis.from_url(TEST_REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        unavailable(f"Redis at TEST_REDIS_URL is unreachable: {exc}")
    return TEST_REDIS_URL


def make_settings(
    data_dir: Path, target: DatabaseTarget, /, **overrides: dict[str, Any]
) -> Settings:
    """Settings for a test app. Every group is built explicitly so the environment cannot leak in."""

    known = {
        "server",
        "database",
        "redis",
        "security",
        "auth",
        "gateway",
        "call_log",
        "chat",
        "metrics",
        "mail",
        "runtime",
        "admin",
    }
    unknown = set(overrides) - known
    assert not unknown, f"no settings group named {unknown}"

    def group(cls: type, defaults: dict[str, Any], name: str) -> Any:
        return cls(_env_file=None, **{**defaults, **overrides.get(name, {})})

    return Settings(
        server=group(ServerSettings, {"data_dir": data_dir, "trusted_proxies": []}, "server"),
        database=group(
            DatabaseSettings,
            {
                "url": SecretStr(target.url),
                "pg_schema": target.pg_schema,
                # The shared database was migrated once, at the session's first start.
                "auto_migrate": not isinstance(target, SharedDatabase),
            },
            "database",
        ),
        redis=group(
            RedisSettings, {"url": None, "key_prefix": f"t{uuid.uuid4().hex[:8]}"}, "redis"
        ),
        security=group(
            SecuritySettings,
            {"secret_key": SecretStr(SIGNING_KEY), "encryption_keys": SecretStr(ENCRYPTION_KEY)},
            "security",
        ),
        # Cheap Argon2id parameters: still real Argon2id, just fast enough for hundreds of logins.
        auth=group(
            AuthSettings,
            {
                "argon2_time_cost": 1,
                "argon2_memory_kib": 8192,
                "argon2_parallelism": 1,
            },
            "auth",
        ),
        gateway=group(GatewaySettings, {}, "gateway"),
        call_log=group(CallLogSettings, {"flush_interval_seconds": 0.05}, "call_log"),
        chat=group(ChatSettings, {}, "chat"),
        metrics=group(MetricsSettings, {}, "metrics"),
        mail=group(MailSettings, {}, "mail"),
        # Limits off unless a test turns them on: most tests send many requests from one address.
        runtime=group(
            RuntimeDefaults,
            {
                "register_max_per_ip_per_hour": 1000,
                "ip_rpm": 0,
                "default_user_rpm": 0,
                "default_user_concurrent_streams": 0,
            },
            "runtime",
        ),
        admin=group(
            AdminSettings,
            {"username": ADMIN_USERNAME, "password": SecretStr(ADMIN_PASSWORD)},
            "admin",
        ),
    )


@dataclass
class Harness:
    """A running app (lifespan entered) and an HTTP client speaking to it in-process."""

    app: FastAPI
    client: httpx.AsyncClient
    settings: Settings
    _admin_headers: dict[str, str] | None = field(default=None, repr=False)

    async def login(self, username: str, password: str) -> dict[str, Any]:
        response = await self.client.post(
            "/api/auth/login", json={"username": username, "password": password}
        )
        assert response.status_code == 200, response.text
        return dict(response.json())

    async def admin_headers(self) -> dict[str, str]:
        if self._admin_headers is None:
            tokens = await self.login(ADMIN_USERNAME, ADMIN_PASSWORD)
            self._admin_headers = {"Authorization": f"Bearer {tokens['access_token']}"}
        return self._admin_headers


@dataclass
class Account:
    id: int
    username: str
    password: str
    access_token: str
    refresh_token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


HarnessFactory = Callable[..., Awaitable[Harness]]


@pytest.fixture
async def harness_factory(
    tmp_path: Path, database: DatabaseTarget
) -> AsyncIterator[HarnessFactory]:
    """Build apps with setting overrides, e.g. `await harness_factory(auth={"...": 1})`."""
    stack: list[tuple[FastAPI, Any, httpx.AsyncClient]] = []

    async def build(**overrides: dict[str, Any]) -> Harness:
        settings = make_settings(tmp_path / f"data{len(stack)}", database, **overrides)
        app = create_app(settings)
        lifespan = app.router.lifespan_context(app)
        await lifespan.__aenter__()
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, client=("203.0.113.10", 50000)),
            base_url="http://testserver",
        )
        stack.append((app, lifespan, client))
        return Harness(app=app, client=client, settings=settings)

    yield build
    for _app, lifespan, client in reversed(stack):
        await client.aclose()
        await lifespan.__aexit__(None, None, None)


@pytest.fixture
async def harness(harness_factory: HarnessFactory) -> Harness:
    return await harness_factory()


@pytest.fixture
async def client(harness: Harness) -> httpx.AsyncClient:
    return harness.client


AccountFactory = Callable[..., Awaitable[Account]]


async def register(
    harness: Harness, username: str, password: str = "correct horse battery", **extra: Any
) -> Account:
    """Register an account through the API (`extra`: email, display_name …) and sign it in."""
    response = await harness.client.post(
        "/api/auth/register", json={"username": username, "password": password, **extra}
    )
    assert response.status_code == 201, response.text
    tokens = await harness.login(username, password)
    return Account(
        id=response.json()["id"],
        username=username,
        password=password,
        access_token=tokens["access_token"],
        refresh_token=tokens["refresh_token"],
    )


@pytest.fixture
def make_account(harness: Harness) -> AccountFactory:
    """Register a user through the API and sign them in."""
    counter = 0

    async def create(
        username: str | None = None, password: str = "correct horse battery", **extra: Any
    ) -> Account:
        nonlocal counter
        counter += 1
        return await register(
            harness, username or f"user{counter}_{uuid.uuid4().hex[:6]}", password, **extra
        )

    return create
