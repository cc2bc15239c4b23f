"""Test fixtures.

The whole suite runs on SQLite by default and on PostgreSQL when `TEST_DATABASE_URL` is set (`make
test` does both). Each run gets its own database (a temp SQLite file, or a fresh PostgreSQL schema);
every test starts from empty tables. `TEST_REDIS_URL` enables the Redis-backed tests. When a service
named by these variables is unreachable, the tests that need it skip with the reason — except under
`CI=true`, where that is a failure.
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
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

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
from app.main import create_app
from app.models import Base
from app.runtime_settings.values import RuntimeDefaults

# Live-server fixtures (uvicorn on a free port, the mock upstream) and real server processes, for
# every test package.
pytest_plugins = ["tests.processes", "tests.live", "tests.mail_server"]

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL") or None
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL") or None
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

ADMIN_USERNAME = "root-admin"
ADMIN_PASSWORD = "admin-pass-Ω-1234"
SIGNING_KEY = "test-signing-key-7f3a9c1e5b2d8046af1c3e5b7d9f0a2c"
ENCRYPTION_KEY = "Zk1xQmR6b1hYc0FvQ0pHNnU3dUF0b2xWd2JvTnBkNkE="


def unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: the service must be available)")
    pytest.skip(reason)


@dataclass(frozen=True)
class DatabaseTarget:
    url: str
    pg_schema: str | None = None

    @property
    def is_postgres(self) -> bool:
        return self.url.startswith("postgresql")


async def _pg_execute(url: str, *statements: str) -> None:
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            for statement in statements:
                await conn.execute(text(statement))
    finally:
        await engine.dispose()


def new_pg_schema() -> str:
    assert TEST_DATABASE_URL
    schema = f"t_{uuid.uuid4().hex[:16]}"
    try:
        asyncio.run(_pg_execute(TEST_DATABASE_URL, f"CREATE SCHEMA {schema}"))
    except OSError as exc:
        unavailable(f"PostgreSQL at TEST_DATABASE_URL is unreachable: {exc}")
    return schema


def drop_pg_schema(schema: str) -> None:
    assert TEST_DATABASE_URL
    asyncio.run(_pg_execute(TEST_DATABASE_URL, f"DROP SCHEMA IF EXISTS {schema} CASCADE"))


@pytest.fixture(scope="session")
def database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DatabaseTarget]:
    """The database this test run uses; migrated by the first app that starts on it."""
    if TEST_DATABASE_URL:
        schema = new_pg_schema()
        yield DatabaseTarget(TEST_DATABASE_URL, schema)
        drop_pg_schema(schema)
    else:
        path = tmp_path_factory.mktemp("db") / "app.db"
        yield DatabaseTarget(f"sqlite+aiosqlite:///{path}")


@pytest.fixture
def fresh_database(tmp_path: Path) -> Iterator[DatabaseTarget]:
    """A database of this test's own (for tests that start server processes)."""
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
            {"url": SecretStr(target.url), "pg_schema": target.pg_schema},
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


async def empty_database(database: DatabaseTarget) -> None:
    """Delete every row, so the next test starts from empty tables (after its apps have stopped)."""
    connect_args = (
        {"server_settings": {"search_path": database.pg_schema}} if database.pg_schema else {}
    )
    engine = create_async_engine(database.url, connect_args=connect_args)
    tables = [table.name for table in reversed(Base.metadata.sorted_tables)]
    try:
        async with engine.begin() as conn:
            if engine.dialect.name == "postgresql":
                await conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
            else:
                for name in tables:
                    await conn.execute(text(f"DELETE FROM {name}"))  # noqa: S608 (names from metadata)
    finally:
        await engine.dispose()


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
    if stack:
        await empty_database(database)


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
