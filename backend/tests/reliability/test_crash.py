"""`kill -9` while calls run: every call leaves a trace, every chat reply keeps its text.

A real server process streams `/v1` calls and chat replies (one per conversation) from the mock
upstream; it is killed outright mid-stream — no shutdown, nothing flushed on the way out — and a
new one is started on the same database and data directory. The new one records every call the
dead one was running as `interrupted` and stores each reply with the text it had, marked
`interrupted`.
"""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine

from app.devtools.mock_upstream import MockServer
from app.models import CallInFlight, CallLog, Message
from tests.conftest import DatabaseTarget
from tests.processes import admin_with_channel, free_port, start_cli, unlimited_env, wait_ready

pytestmark = pytest.mark.slow
STREAMS = 6
REPLIES = 3
PATIENCE = 60.0


async def _state(database: DatabaseTarget) -> tuple[list[CallLog], list[Message], int]:
    engine = create_async_engine(database.url, **database.engine_args())
    try:
        async with engine.connect() as conn:
            logs = list((await conn.execute(select(CallLog))).all())
            replies = list(
                (await conn.execute(select(Message).where(Message.role == "assistant"))).all()
            )
            left = len((await conn.execute(select(CallInFlight.id))).all())
            return logs, replies, left  # type: ignore[return-value]
    finally:
        await engine.dispose()


def _serve(tmp_path: Path, database: DatabaseTarget, port: int) -> object:
    return start_cli(["serve"], unlimited_env(tmp_path / "data", database, port))


def test_a_killed_server_leaves_a_trace_of_every_call_and_every_reply_keeps_its_text(
    tmp_path: Path, fresh_database: DatabaseTarget, mock_upstream: MockServer
) -> None:
    mock_upstream.set_profile("long", chunks=600, interval=0.05)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = _serve(tmp_path, fresh_database, port)
    try:
        wait_ready(base, proc)  # type: ignore[arg-type]
        with httpx.Client(base_url=base, timeout=30) as client:
            admin, key = admin_with_channel(
                client, mock_upstream.base_url("long"), upstream_key="sk-up-crash"
            )
            conversations = [
                client.post("/api/conversations", json={}, headers=admin).json()["id"]
                for _ in range(REPLIES)
            ]

        streaming = threading.Barrier(STREAMS + REPLIES + 1)

        def stream(path: str, body: dict[str, object], headers: dict[str, str]) -> None:
            try:
                with (
                    httpx.Client(base_url=base, timeout=PATIENCE) as c,
                    c.stream("POST", path, json=body, headers=headers) as response,
                ):
                    lines = response.iter_lines()
                    for line in lines:
                        if line.startswith(("data: ", "event: delta")):
                            break
                    streaming.wait(PATIENCE)
                    for _ in lines:
                        pass
            except (httpx.HTTPError, threading.BrokenBarrierError):
                pass  # the server is killed under it

        threads = [
            threading.Thread(
                target=stream,
                args=(
                    "/v1/chat/completions",
                    {
                        "model": "mock-gpt",
                        "messages": [{"role": "user", "content": "go"}],
                        "stream": True,
                    },
                    {"Authorization": f"Bearer {key}"},
                ),
            )
            for _ in range(STREAMS)
        ] + [
            threading.Thread(
                target=stream,
                args=(f"/api/conversations/{cid}/messages", {"content": "go"}, admin),
            )
            for cid in conversations
        ]
        for thread in threads:
            thread.start()
        streaming.wait(PATIENCE)
        # Long enough for the calls to be recorded and the replies checkpointed.
        time.sleep(4.5)
        proc.send_signal(signal.SIGKILL)  # type: ignore[attr-defined]
        proc.communicate(timeout=30)  # type: ignore[attr-defined]
        for thread in threads:
            thread.join(timeout=PATIENCE)
        logs, replies, _ = asyncio.run(_state(fresh_database))
        assert logs == [], "nothing was flushed on the way out"
        assert replies == []

        proc = _serve(tmp_path, fresh_database, port)
        wait_ready(base, proc)  # type: ignore[arg-type]
        logs, replies, left = asyncio.run(_state(fresh_database))
    finally:
        proc.send_signal(signal.SIGTERM)  # type: ignore[attr-defined]
        proc.communicate(timeout=60)  # type: ignore[attr-defined]

    assert left == 0
    interrupted = [row for row in logs if row.end_reason == "interrupted"]
    assert len(interrupted) == STREAMS + REPLIES, [(r.source, r.end_reason) for r in logs]
    assert {row.source for row in interrupted} == {"api", "chat"}
    assert all(row.status_code == 500 and not row.success for row in interrupted)
    assert all(
        row.channel_id is not None and row.requested_model == "mock-gpt" for row in interrupted
    )
    assert len(replies) == REPLIES
    for reply in replies:
        assert reply.status == "interrupted"
        assert reply.error_code == "server_interrupted"
        assert len(reply.content) > 20, "the reply keeps the text it had"
