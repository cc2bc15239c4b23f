"""Running the app's command line as real processes, for tests that need separate processes.

A pytest plugin (see `pytest_plugins` in conftest): `two_processes` is available to every test.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import (
    ADMIN_PASSWORD,
    ADMIN_USERNAME,
    ENCRYPTION_KEY,
    SIGNING_KEY,
    DatabaseTarget,
)

BACKEND_DIR = Path(__file__).resolve().parents[1]
# Variables the test sets itself; any the developer's shell exported are dropped so they cannot leak in.
_OWN_PREFIXES = ("DATABASE_", "REDIS_", "ADMIN_", "AUTH_", "SECRET_KEY", "ENCRYPTION_KEYS")


def app_env(data_dir: Path, database: DatabaseTarget, **extra: str) -> dict[str, str]:
    database.written_by_another_process()
    env = {k: v for k, v in os.environ.items() if not k.startswith(_OWN_PREFIXES)}
    env.update(
        DATA_DIR=str(data_dir),
        DATABASE_URL=database.url,
        SECRET_KEY=SIGNING_KEY,
        ENCRYPTION_KEYS=ENCRYPTION_KEY,
        AUTH_ARGON2_TIME_COST="1",
        AUTH_ARGON2_MEMORY_KIB="8192",
        AUTH_ARGON2_PARALLELISM="1",
        PYTHONUNBUFFERED="1",
    )
    if database.pg_schema:
        env["DATABASE_PG_SCHEMA"] = database.pg_schema
    env.update(extra)
    return env


def start_cli(args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "app", *args],
        cwd=BACKEND_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(
    base_url: str, proc: subprocess.Popen[str] | None = None, timeout: float = 60
) -> None:
    """Wait for /readyz to answer 200. With `proc`, a server that exits (or never gets ready)
    fails the test with the end of its own output, which is what explains why."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            _, err = proc.communicate()
            raise AssertionError(f"server exited with {proc.returncode}:\n{err[-4000:]}")
        try:
            if httpx.get(f"{base_url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    if proc is not None:
        proc.kill()
        _, err = proc.communicate()
        raise AssertionError(f"server did not become ready:\n{err[-4000:]}")
    raise AssertionError("server did not become ready")


def unlimited_env(
    data_dir: Path, database: DatabaseTarget, port: int, **extra: str
) -> dict[str, str]:
    """A server's environment with the first admin set and no per-address or per-user limits
    (a test's many streams from one address must not be refused), titles off."""
    return app_env(
        data_dir,
        database,
        PORT=str(port),
        ADMIN_USERNAME=ADMIN_USERNAME,
        ADMIN_PASSWORD=ADMIN_PASSWORD,
        IP_RPM="0",
        DEFAULT_USER_RPM="0",
        DEFAULT_USER_CONCURRENT_STREAMS="0",
        CHAT_AUTO_TITLE="false",
        **extra,
    )


def admin_with_channel(
    client: httpx.Client, base_url: str, *, name: str = "long", upstream_key: str = "sk-up-test"
) -> tuple[dict[str, str], str]:
    """On a fresh server: the first admin's headers, a channel for `mock-gpt` at `base_url`,
    and a new API key of the admin's."""
    login = client.post(
        "/api/auth/login", json={"username": ADMIN_USERNAME, "password": ADMIN_PASSWORD}
    )
    admin = {"Authorization": f"Bearer {login.json()['access_token']}"}
    channel = client.post(
        "/api/admin/channels",
        json={"name": name, "base_url": base_url, "api_key": upstream_key, "models": ["mock-gpt"]},
        headers=admin,
    )
    assert channel.status_code == 201, channel.text
    key = client.post("/api/keys", json={"name": "k"}, headers=admin).json()["key"]
    return admin, str(key)


@pytest.fixture
def two_processes(
    tmp_path: Path, fresh_database: DatabaseTarget, redis_url: str
) -> Iterator[tuple[httpx.Client, httpx.Client]]:
    shared = {
        "REDIS_URL": redis_url,
        "REDIS_KEY_PREFIX": f"t{uuid.uuid4().hex[:8]}",
        "ADMIN_USERNAME": ADMIN_USERNAME,
        "ADMIN_PASSWORD": ADMIN_PASSWORD,
        "TRUSTED_PROXIES": "127.0.0.1",
        "DEFAULT_USER_RPM": "10",
        "IP_RPM": "0",
        "HOST": "127.0.0.1",
        "SHUTDOWN_GRACE_SECONDS": "2",
    }
    procs: list[subprocess.Popen[str]] = []
    clients: list[httpx.Client] = []
    for name in ("a", "b"):
        port = free_port()
        env = app_env(tmp_path / name, fresh_database, PORT=str(port), **shared)
        procs.append(start_cli(["serve"], env))
        clients.append(httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30))
    try:
        for client, proc in zip(clients, procs, strict=True):
            wait_ready(str(client.base_url), proc)
        yield clients[0], clients[1]
    finally:
        for client in clients:
            client.close()
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            proc.communicate(timeout=60)
