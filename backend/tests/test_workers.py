"""`WORKERS=N`: several worker processes on one port, refused without Redis."""

from __future__ import annotations

import signal
from pathlib import Path

import httpx
import pytest

from tests.conftest import ADMIN_PASSWORD, ADMIN_USERNAME, DatabaseTarget
from tests.processes import app_env, free_port, start_cli, wait_ready

pytestmark = pytest.mark.slow


def test_several_workers_without_redis_are_refused_with_a_reason(
    tmp_path: Path, fresh_database: DatabaseTarget
) -> None:
    env = app_env(
        tmp_path, fresh_database, PORT=str(free_port()), WORKERS="3", ADMIN_PASSWORD=ADMIN_PASSWORD
    )
    proc = start_cli(["serve"], env)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert "WORKERS=3 needs REDIS_URL" in err


def test_workers_share_one_port_and_behave_as_one(
    tmp_path: Path, fresh_database: DatabaseTarget, redis_url: str
) -> None:
    port = free_port()
    env = app_env(
        tmp_path,
        fresh_database,
        PORT=str(port),
        WORKERS="2",
        REDIS_URL=redis_url,
        REDIS_KEY_PREFIX=f"w{port}",
        ADMIN_USERNAME=ADMIN_USERNAME,
        ADMIN_PASSWORD=ADMIN_PASSWORD,
        IP_RPM="0",
        SHUTDOWN_GRACE_SECONDS="1",
    )
    proc = start_cli(["serve"], env)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base, proc)
        processes: set[str] = set()
        with httpx.Client(base_url=base, timeout=10) as client:
            for _ in range(60):
                # A new connection each time, so the kernel spreads them over the workers;
                # a request id starts with its process's own random prefix.
                response = httpx.get(f"{base}/healthz", timeout=10)
                processes.add(response.headers["x-request-id"].split("-")[0])
                if len(processes) > 1:
                    break
            assert len(processes) == 2, "both workers answer"
            login = client.post(
                "/api/auth/login", json={"username": ADMIN_USERNAME, "password": ADMIN_PASSWORD}
            )
            assert login.status_code == 200, "exactly one first admin, whichever worker made it"
            users = client.get(
                "/api/admin/users",
                headers={"Authorization": f"Bearer {login.json()['access_token']}"},
            )
            assert users.json()["total"] == 1
            metrics = client.get("/metrics").text
            assert "acgw_calls_in_flight" in metrics
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode in (0, -signal.SIGTERM), err
    # Every worker starts (and stops) cleanly the first time: no traceback anywhere.
    assert "Traceback" not in out + err, out + err
    if not fresh_database.is_postgres:  # SQLite: the start says where its limit is
        assert "2 workers share one SQLite file" in err
        assert "use PostgreSQL (DATABASE_URL)" in err
    assert (tmp_path / "metrics").is_dir(), "a shared directory for the workers' metrics"
