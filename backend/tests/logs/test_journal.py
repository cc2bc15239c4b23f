"""Calls in flight are recorded while they run, and a live server finishes a dead one's calls.

(The whole story with a real process killed by SIGKILL: tests/reliability/test_crash.py.)
"""

from __future__ import annotations

import asyncio
import os
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from app.gateway.accounting import CallRecord
from app.logs import journal as journal_module
from app.logs.journal import Journal
from app.logs.recovery import recover
from app.models import CallInFlight, CallLog, ServerInstance
from app.models.base import utcnow
from tests.conftest import Harness, HarnessFactory


def _call(model: str = "m") -> CallRecord:
    return CallRecord(
        request_id="r",
        source="api",
        user_id=None,
        api_key_id=None,
        client_ip=None,
        requested_model=model,
    )


def test_a_quick_call_costs_nothing_and_a_long_one_is_recorded_then_removed() -> None:
    journal = Journal("me")
    quick, long = _call("quick"), _call("long")
    journal.begin(quick)
    journal.begin(long)
    started = journal._entries[long.journal_id].began
    # A flush before either has run a second: nothing to write, and the quick one ends.
    work = journal.take([quick.journal_id], now=started + 0.1)
    assert not work
    assert len(journal) == 1
    # A second later the long one is recorded …
    work = journal.take([], now=started + journal_module.JOURNAL_AFTER_SECONDS + 0.1)
    assert [record["id"] for record in work.inserts] == [long.journal_id]
    assert work.inserts[0]["row"]["requested_model"] == "long"
    assert work.inserts[0]["instance_id"] == "me"
    # … and when its row is written, the record goes in the same flush.
    work = journal.take([long.journal_id], now=started + 5)
    assert work.deletes == [long.journal_id]
    assert len(journal) == 0


def test_a_failed_flush_gives_its_work_back() -> None:
    journal = Journal("me")
    call = _call()
    journal.begin(call)
    began = journal._entries[call.journal_id].began
    work = journal.take([], now=began + 5)
    assert work.inserts
    journal.give_back(work)
    again = journal.take([], now=began + 6)
    assert [record["id"] for record in again.inserts] == [call.journal_id]
    ended = journal.take([call.journal_id], now=began + 7)
    journal.give_back(ended)  # the row's write failed: the entry is pending again
    assert len(journal) == 1


def test_a_reply_is_checkpointed_every_few_seconds() -> None:
    journal = Journal("me")
    call = _call()
    text = ["Hello"]
    journal.begin(call, lambda: {"content": "".join(text)})
    began = journal._entries[call.journal_id].began
    first = journal.take([], now=began + 1.5)
    assert first.inserts[0]["reply"] == {"content": "Hello"}
    text.append(" world")
    assert not journal.take([], now=began + 2.0)  # not due yet
    later = journal.take([], now=began + 1.5 + journal_module.CHECKPOINT_SECONDS)
    assert later.updates[0]["reply"] == {"content": "Hello world"}


async def _rows(harness: Harness, model: type) -> list:  # type: ignore[type-arg]
    async with harness.app.state.ctx.sessionmaker() as db:
        return list((await db.scalars(select(model))).all())


async def test_a_live_server_finishes_the_calls_of_a_dead_one_on_this_host(
    harness_factory: HarnessFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(journal_module, "JOURNAL_AFTER_SECONDS", 0.0)
    first = await harness_factory()
    ctx = first.app.state.ctx
    running = [_call(f"model-{i}") for i in range(3)]
    for call in running:
        ctx.call_logs.begin(call)
    await ctx.call_logs.flush()
    await ctx.call_logs._write_batch()  # the journal's part, with no rows queued
    assert len(await _rows(first, CallInFlight)) == 3
    # The first server dies: its lock goes with it (nothing else happens).
    os.close(ctx.instance._fd)
    ctx.instance._fd = None
    second = await harness_factory()
    logs = await _rows(second, CallLog)
    assert sorted(row.requested_model for row in logs) == ["model-0", "model-1", "model-2"]
    assert {row.end_reason for row in logs} == {"interrupted"}
    assert await _rows(second, CallInFlight) == []
    live = {row.id for row in await _rows(second, ServerInstance)}
    assert ctx.instance.id not in live
    assert second.app.state.ctx.instance.id in live


async def test_two_live_servers_finish_a_dead_ones_calls_once(
    harness_factory: HarnessFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both find the same entries; whichever removes them writes the rows, the other rolls back."""
    monkeypatch.setattr(journal_module, "JOURNAL_AFTER_SECONDS", 0.0)
    first = await harness_factory()
    ctx = first.app.state.ctx
    for i in range(3):
        ctx.call_logs.begin(_call(f"model-{i}"))
    await ctx.call_logs.flush()
    await ctx.call_logs._write_batch()
    live = [await harness_factory(), await harness_factory()]
    os.close(ctx.instance._fd)  # the first dies
    ctx.instance._fd = None
    both_read = asyncio.Barrier(2)  # both have read the entries before either writes
    for harness in live:
        writer = harness.app.state.ctx.call_logs

        async def gated(rows: list[dict[str, object]], extra: object, _w: object = writer) -> None:
            await both_read.wait()
            await type(_w).write_recovered(_w, rows, extra)  # type: ignore[arg-type]

        monkeypatch.setattr(writer, "write_recovered", gated)
    finished = await asyncio.gather(
        *(
            recover(h.app.state.ctx.engine, h.app.state.ctx.call_logs, h.app.state.ctx.instance)
            for h in live
        )
    )
    assert sorted(finished) == [0, 3]
    logs = await _rows(live[0], CallLog)
    assert sorted(row.requested_model for row in logs) == ["model-0", "model-1", "model-2"]
    assert await _rows(live[0], CallInFlight) == []


async def test_a_running_server_is_left_alone(harness_factory: HarnessFactory) -> None:
    first = await harness_factory()
    second = await harness_factory()
    assert await second.app.state.ctx.instance.dead() == []
    assert first.app.state.ctx.instance.id not in await second.app.state.ctx.instance.dead()


async def test_a_server_elsewhere_is_dead_once_unseen_for_a_while(
    harness: Harness, tmp_path: Path
) -> None:
    ctx = harness.app.state.ctx
    now = utcnow()
    async with ctx.sessionmaker() as db:
        for name, seen in (("fresh", now), ("stale", now - timedelta(minutes=5))):
            db.add(
                ServerInstance(
                    id=name,
                    host="another-machine",
                    lock_path=str(tmp_path / f"{name}.lock"),
                    started_at=seen,
                    seen_at=seen,
                )
            )
        await db.commit()
    assert await ctx.instance.dead() == ["stale"]
    async with ctx.sessionmaker() as db:
        await db.execute(update(ServerInstance).values(seen_at=utcnow()))
        await db.commit()
    assert await ctx.instance.dead() == []


def test_journal_ids_are_unique_in_a_process_and_apart_from_a_forked_child() -> None:
    ids = {_call().journal_id for _ in range(1000)}
    assert len(ids) == 1000
    assert all(len(i) <= 32 for i in ids)  # the column's width
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next id, to the parent
        os.write(write, _call().journal_id.encode())
        os._exit(0)
    os.close(write)
    child_id = os.read(read, 64).decode()
    os.waitpid(pid, 0)
    assert child_id not in ids
    assert child_id[:16] != next(iter(ids))[:16]
