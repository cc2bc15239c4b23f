"""The timer wheel and `Deadline`: fire on time (never early), cancel cleanly, keep nothing."""

from __future__ import annotations

import asyncio

import pytest

from app.core.timers import Deadline, TimerWheel, timer_wheel


async def test_timers_fire_in_order_and_never_early() -> None:
    loop = asyncio.get_running_loop()
    wheel = TimerWheel(loop)
    fired: list[tuple[str, float, float]] = []
    done = loop.create_future()
    start = loop.time()
    plan = {"c": 0.09, "a": 0.02, "b": 0.05}
    for name, delay in plan.items():
        when = start + delay
        wheel.call_at(
            when,
            lambda name=name, when=when: fired.append((name, when, loop.time())),
        )
    wheel.call_at(start + 0.12, lambda: done.set_result(None))
    await asyncio.wait_for(done, 5)
    assert [name for name, _, _ in fired] == ["a", "b", "c"]
    assert all(at >= when - 1e-6 for _, when, at in fired)
    assert len(wheel) == 0


async def test_an_earlier_timer_added_later_fires_first() -> None:
    loop = asyncio.get_running_loop()
    wheel = TimerWheel(loop)
    fired: list[str] = []
    wheel.call_later(30, lambda: fired.append("late"))  # arms the wheel far ahead
    early = loop.create_future()
    wheel.call_later(0.02, lambda: early.set_result(None))
    await asyncio.wait_for(early, 5)  # would hang if the wheel stayed armed for +30 s
    assert fired == []
    assert len(wheel) == 1


async def test_cancelled_timers_do_not_fire_and_leave_nothing() -> None:
    loop = asyncio.get_running_loop()
    wheel = TimerWheel(loop)
    fired: list[int] = []
    timers = [wheel.call_later(0.02, lambda i=i: fired.append(i)) for i in range(100)]
    for timer in timers[::2]:
        timer.cancel()
        timer.cancel()  # idempotent
    marker = loop.create_future()
    wheel.call_later(0.05, lambda: marker.set_result(None))
    await asyncio.wait_for(marker, 5)
    assert sorted(fired) == list(range(1, 100, 2))
    assert len(wheel) == 0


async def test_a_failing_callback_does_not_stop_the_others() -> None:
    loop = asyncio.get_running_loop()
    wheel = TimerWheel(loop)
    reported: list[dict[str, object]] = []
    loop.set_exception_handler(lambda _loop, context: reported.append(context))
    try:
        done = loop.create_future()

        def boom() -> None:
            raise RuntimeError("boom")

        wheel.call_later(0.01, boom)
        wheel.call_later(0.01, lambda: done.set_result("ran"))
        assert await asyncio.wait_for(done, 5) == "ran"
    finally:
        loop.set_exception_handler(None)
    assert isinstance(reported[0]["exception"], RuntimeError)


async def _overrun(deadline: Deadline, move_to: float | None = None) -> None:
    async with deadline:
        if move_to is not None:
            deadline.reschedule(move_to)
        await asyncio.sleep(5)


async def test_deadline_raises_timeout_error_when_the_block_overruns() -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    deadline = Deadline.after(0.05)
    with pytest.raises(TimeoutError):
        await _overrun(deadline)
    assert deadline.expired()
    assert loop.time() - started >= 0.05 - 1e-6
    assert len(timer_wheel()) == 0


async def test_deadline_that_is_met_leaves_no_timer_and_does_not_cancel_later_work() -> None:
    async with Deadline.after(0.05) as deadline:
        await asyncio.sleep(0)
    assert not deadline.expired()
    assert len(timer_wheel()) == 0
    await asyncio.sleep(0.1)  # the task is not cancelled after the block


async def test_reschedule_moves_or_removes_the_deadline() -> None:
    async with Deadline.after(0.03) as deadline:
        deadline.reschedule(None)
        await asyncio.sleep(0.08)
    assert not deadline.expired()

    loop = asyncio.get_running_loop()
    with pytest.raises(TimeoutError):
        await _overrun(Deadline.after(5), move_to=loop.time() + 0.02)


async def test_a_deadline_in_the_past_fires_at_the_next_tick() -> None:
    loop = asyncio.get_running_loop()
    with pytest.raises(TimeoutError):
        await _overrun(Deadline(loop.time() - 1))


async def test_outer_cancellation_is_not_turned_into_a_timeout() -> None:
    entered = asyncio.Event()

    async def body() -> None:
        async with Deadline.after(5):
            entered.set()
            await asyncio.sleep(5)

    task = asyncio.get_running_loop().create_task(body())
    await entered.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(timer_wheel()) == 0


async def _raise_inside() -> None:
    async with Deadline.after(5):
        raise ValueError("inner")


async def test_an_exception_from_the_block_passes_through() -> None:
    with pytest.raises(ValueError, match="inner"):
        await _raise_inside()
    assert len(timer_wheel()) == 0
