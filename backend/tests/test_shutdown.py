"""SIGTERM while calls stream: readiness turns 503 first, every client gets a final event, every
call is logged, the process exits."""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import create_async_engine

from app.devtools.mock_upstream import MockServer
from app.models import CallLog, Message
from tests.conftest import DatabaseTarget
from tests.processes import admin_with_channel, free_port, start_cli, unlimited_env, wait_ready

pytestmark = pytest.mark.slow
STREAMS = 20


async def _count(database: DatabaseTarget) -> tuple[int, list[str]]:
    connect_args = (
        {"server_settings": {"search_path": database.pg_schema}} if database.pg_schema else {}
    )
    engine = create_async_engine(database.url, connect_args=connect_args)
    try:
        async with engine.connect() as conn:
            logs = await conn.scalar(select(func.count()).select_from(CallLog)) or 0
            statuses = (
                (await conn.execute(select(Message.status).where(Message.role == "assistant")))
                .scalars()
                .all()
            )
            return logs, list(statuses)
    finally:
        await engine.dispose()


def test_sigterm_ends_every_stream_with_a_final_event_and_logs_every_call(
    tmp_path: Path, fresh_database: DatabaseTarget, mock_upstream: MockServer
) -> None:
    mock_upstream.set_profile("long", chunks=400, interval=0.05)
    port = free_port()
    env = unlimited_env(
        tmp_path, fresh_database, port, SHUTDOWN_DELAY_SECONDS="1", SHUTDOWN_GRACE_SECONDS="2"
    )
    proc = start_cli(["serve"], env)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base, proc)
        with httpx.Client(base_url=base, timeout=30) as client:
            admin, key = admin_with_channel(
                client, mock_upstream.base_url("long"), upstream_key="sk-up-shutdown"
            )
            conversation = client.post("/api/conversations", json={}, headers=admin).json()

        started = threading.Barrier(STREAMS + 2)
        endings: list[str] = []
        lock = threading.Lock()

        def stream_v1() -> None:
            last = ""
            with (
                httpx.Client(base_url=base, timeout=60) as c,
                c.stream(
                    "POST",
                    "/v1/chat/completions",
                    json={
                        "model": "mock-gpt",
                        "messages": [{"role": "user", "content": "go"}],
                        "stream": True,
                    },
                    headers={"Authorization": f"Bearer {key}"},
                ) as response,
            ):
                lines = response.iter_lines()
                for line in lines:
                    if line.startswith("data: "):
                        break
                started.wait(30)
                for line in lines:
                    if line.startswith("data: "):
                        last = line
            with lock:
                endings.append(last)

        def stream_chat() -> None:
            last = ""
            with (
                httpx.Client(base_url=base, timeout=60) as c,
                c.stream(
                    "POST",
                    f"/api/conversations/{conversation['id']}/messages",
                    json={"content": "go"},
                    headers=admin,
                ) as response,
            ):
                lines = response.iter_lines()
                for line in lines:
                    if line.startswith("event: delta"):
                        break
                started.wait(30)
                for line in lines:
                    if line.startswith("event: "):
                        last = line
            with lock:
                endings.append(f"chat {last}")

        threads = [threading.Thread(target=stream_v1) for _ in range(STREAMS)]
        threads.append(threading.Thread(target=stream_chat))
        for thread in threads:
            thread.start()
        started.wait(30)  # every stream is flowing
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        ready = httpx.get(f"{base}/readyz", timeout=5)
        assert ready.status_code == 503, (
            "readiness turns 503 first, while requests are still served"
        )
        for thread in threads:
            thread.join(40)
        _out, err = proc.communicate(timeout=40)
        code = proc.returncode
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)
    # uvicorn re-raises the signal once it has shut down, so the exit status says SIGTERM.
    assert code in (0, -signal.SIGTERM), err
    v1 = [e for e in endings if not e.startswith("chat")]
    assert len(v1) == STREAMS
    for ending in v1:
        assert ending == "data: [DONE]" or '"code":"server_shutdown"' in ending, ending
    assert any('"server_shutdown"' in e for e in v1), "the 20 s streams were cut at the grace time"
    assert endings.count("chat event: done") == 1, endings
    logs, statuses = asyncio.run(_count(fresh_database))
    assert logs == STREAMS + 1, "one call-log row per call, all written before the exit"
    assert statuses == ["stopped"]
