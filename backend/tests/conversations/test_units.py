"""Context building, replay buffers and conversation claims, without a server."""

from __future__ import annotations

import asyncio

import pytest

from app.conversations.claims import MemoryClaims, RedisClaims
from app.conversations.prompt import build_context
from app.conversations.replay import ReplyBuffer, follow, parse_event_id
from app.models import Conversation, Message


def _conversation(system: str = "", preset: list[dict[str, str]] | None = None) -> Conversation:
    return Conversation(system_prompt=system, preset_messages=preset or [])


def _message(role: str, content: str, status: str = "complete") -> Message:
    return Message(role=role, content=content, status=status)


def test_context_is_preset_then_history_without_empty_failed_replies() -> None:
    conversation = _conversation("Be brief.", [{"role": "user", "content": "example"}])
    history = [
        _message("user", "q1"),
        _message("assistant", "", status="error"),
        _message("user", "q2"),
        _message("assistant", "partial", status="stopped"),
        _message("user", "q3"),
    ]
    context = build_context(conversation, history, 10_000)
    assert context == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "example"},
        {"role": "user", "content": "q1"},
        {"role": "user", "content": "q2"},
        {"role": "assistant", "content": "partial"},
        {"role": "user", "content": "q3"},
    ]


def test_context_keeps_the_newest_messages_within_the_budget() -> None:
    history = []
    for index in range(20):
        history += [
            _message("user", f"question {index} " * 20),
            _message("assistant", "answer " * 20),
        ]
    history.append(_message("user", "last"))
    context = build_context(_conversation("sys"), history, 400)
    assert context[0] == {"role": "system", "content": "sys"}
    assert context[-1] == {"role": "user", "content": "last"}
    assert context[1]["role"] == "user"
    assert 2 < len(context) < 20


def test_the_newest_message_is_sent_even_when_it_alone_exceeds_the_budget() -> None:
    huge = "word " * 5000
    context = build_context(_conversation(), [_message("user", "old"), _message("user", huge)], 256)
    assert context == [{"role": "user", "content": huge}]


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        ("abc.3", ("abc", 3)),
        ("a.b-c_d.12", ("a.b-c_d", 12)),
        ("abc", None),
        ("abc.x", None),
        (".3", None),
        ("", None),
        (None, None),
        ("x" * 65 + ".1", None),
    ],
)
def test_event_ids(value: str | None, parsed: tuple[str, int] | None) -> None:
    assert parse_event_id(value) == parsed


async def test_a_buffer_replays_from_any_position_and_wakes_waiting_readers() -> None:
    buffer = ReplyBuffer("r1", max_events=100)
    for index in range(3):
        buffer.append("delta", b'{"content": "%d"}' % index)
    assert [e.seq for e in (await buffer.read(1, 0.01)).events] == [2, 3]

    reader = asyncio.get_running_loop().create_task(buffer.read(3, 5))
    await asyncio.sleep(0.01)
    assert not reader.done()
    buffer.append("done", b"{}")
    result = await asyncio.wait_for(reader, 1)
    assert [e.name for e in result.events] == ["done"]
    assert result.finished


async def test_a_reader_behind_a_trimmed_buffer_is_told_of_the_gap() -> None:
    buffer = ReplyBuffer("r1", max_events=5)
    for index in range(10):
        buffer.append("delta", b'{"content": "%d"}' % index)
    buffer.append("done", b'{"status": "complete"}')
    frames = [frame async for frame in follow(buffer, "r1", 2, heartbeat=0.05)]
    assert b"replay_gap" in frames[0]
    assert [f.split(b"\n")[0] for f in frames[1:]] == [b"id: r1.%d" % n for n in range(7, 12)]


async def test_an_idle_follower_sends_keep_alive_comments() -> None:
    buffer = ReplyBuffer("r1", max_events=5)
    stream = follow(buffer, "r1", 0, heartbeat=0.01)
    assert await anext(stream) == b": keep-alive\n\n"
    buffer.append("done", b"{}")
    assert (await anext(stream)).startswith(b"id: r1.1\nevent: done\n")


async def test_memory_claims_hold_one_reply_and_forget_finished_ones() -> None:
    claims = MemoryClaims(keep_seconds=0.05)
    assert await claims.claim(1, "a")
    assert not await claims.claim(1, "b")
    assert await claims.claim(2, "c")
    assert await claims.holder(1) == "a"
    await claims.release(1, "b")  # not the holder: nothing happens
    assert await claims.holder(1) == "a"
    await claims.release(1, "a")
    assert await claims.holder(1) is None
    assert await claims.latest(1) == "a", "a finished reply can still be re-attached to"
    await asyncio.sleep(0.2)
    assert await claims.latest(1) is None
    await claims.release(2, "c")
    await asyncio.sleep(0.2)
    assert len(claims) == 0, "nothing is kept for idle conversations"


async def test_redis_claims_are_leases_shared_by_every_process(redis_url: str) -> None:
    import uuid

    from redis.asyncio import Redis

    prefix = f"t{uuid.uuid4().hex[:8]}"
    first, second = Redis.from_url(redis_url), Redis.from_url(redis_url)
    try:
        mine = RedisClaims(first, prefix, lease_seconds=0.3, keep_seconds=1)
        theirs = RedisClaims(second, prefix, lease_seconds=0.3, keep_seconds=1)
        assert await mine.claim(7, "a")
        assert not await theirs.claim(7, "b")
        assert await theirs.holder(7) == "a"
        assert await mine.renew(7, "a")
        assert not await theirs.renew(7, "b")
        await theirs.release(7, "b")  # only the holder can release
        assert await mine.holder(7) == "a"
        await mine.release(7, "a")
        assert await theirs.holder(7) is None
        assert await theirs.latest(7) == "a"
        assert await theirs.claim(7, "b")
        await asyncio.sleep(0.5)  # the holder died without releasing: its lease runs out
        assert await mine.holder(7) is None
        assert await mine.claim(7, "c")
    finally:
        await first.aclose()
        await second.aclose()
