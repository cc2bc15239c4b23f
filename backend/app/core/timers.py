"""Coarse timers for the request path: every pending deadline shares one event-loop timer.

A model call needs several deadlines (first byte, total, idle between chunks, when to start
watching for a disconnect), and most are cancelled long before they fire. On uvloop each loop
timer is a libuv handle that is allocated, started, stopped and closed on a later loop iteration;
measured under load, a call's three or four of them cost more CPU than its routing and limits.
Here a deadline is an entry in a bucket of `RESOLUTION` seconds; the wheel keeps one loop timer
armed for its earliest non-empty bucket. Arming and cancelling is a set insert and removal.

A wheel timer never fires early and at most `RESOLUTION` late — fine for deadlines measured in
seconds. `Deadline` is `asyncio.timeout` on the wheel, with the same semantics.
"""

from __future__ import annotations

import asyncio
import heapq
import math
import weakref
from collections.abc import Callable
from types import TracebackType

RESOLUTION = 0.01


class WheelTimer:
    __slots__ = ("_callback", "_tick", "_wheel")

    def __init__(self, wheel: TimerWheel, tick: int, callback: Callable[[], None]) -> None:
        self._wheel = wheel
        self._tick = tick
        self._callback = callback

    def cancel(self) -> None:
        """Idempotent; a timer that has fired is already gone."""
        self._wheel._remove(self)


class TimerWheel:
    def __init__(self, loop: asyncio.AbstractEventLoop, resolution: float = RESOLUTION) -> None:
        self._loop = loop
        self._resolution = resolution
        self._buckets: dict[int, set[WheelTimer]] = {}
        self._ticks: list[int] = []  # heap of bucket ticks; may hold ticks of emptied buckets
        self._armed: asyncio.TimerHandle | None = None
        self._armed_tick = 0

    def __len__(self) -> int:
        return sum(len(bucket) for bucket in self._buckets.values())

    def call_at(self, when: float, callback: Callable[[], None]) -> WheelTimer:
        """Call `callback` (from the loop) at or shortly after loop time `when`."""
        tick = math.ceil(when / self._resolution)
        timer = WheelTimer(self, tick, callback)
        bucket = self._buckets.get(tick)
        if bucket is None:
            bucket = self._buckets[tick] = set()
            heapq.heappush(self._ticks, tick)
        bucket.add(timer)
        if self._armed is None or tick < self._armed_tick:
            self._arm(tick)
        return timer

    def call_later(self, delay: float, callback: Callable[[], None]) -> WheelTimer:
        return self.call_at(self._loop.time() + delay, callback)

    def _remove(self, timer: WheelTimer) -> None:
        bucket = self._buckets.get(timer._tick)
        if bucket is not None:
            bucket.discard(timer)
            if not bucket:
                del self._buckets[timer._tick]

    def _arm(self, tick: int) -> None:
        if self._armed is not None:
            self._armed.cancel()
        self._armed_tick = tick
        self._armed = self._loop.call_at(tick * self._resolution, self._fire)

    def _fire(self) -> None:
        self._armed = None
        now = self._loop.time()
        ticks = self._ticks
        while ticks and ticks[0] * self._resolution <= now:
            bucket = self._buckets.pop(heapq.heappop(ticks), None)
            for timer in bucket or ():
                try:
                    timer._callback()
                except Exception as exc:  # a failing callback must not stop the others
                    self._loop.call_exception_handler(
                        {"message": "timer callback failed", "exception": exc}
                    )
        while ticks and ticks[0] not in self._buckets:
            heapq.heappop(ticks)
        if ticks:
            self._arm(ticks[0])


_wheels: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, TimerWheel] = (
    weakref.WeakKeyDictionary()
)


def timer_wheel(loop: asyncio.AbstractEventLoop | None = None) -> TimerWheel:
    """The wheel of `loop` (default: the running loop), created on first use."""
    loop = loop or asyncio.get_running_loop()
    wheel = _wheels.get(loop)
    if wheel is None:
        wheel = _wheels[loop] = TimerWheel(loop)
    return wheel


class Deadline:
    """`async with Deadline(when):` raises `TimeoutError` if the block runs past loop time `when`.

    `reschedule(when)` moves it (None: no deadline), as with `asyncio.timeout_at`.
    """

    __slots__ = ("_cancelling", "_expired", "_task", "_timer", "_wheel", "_when")

    def __init__(self, when: float | None) -> None:
        self._when = when
        self._timer: WheelTimer | None = None
        self._expired = False

    @classmethod
    def after(cls, seconds: float) -> Deadline:
        return cls(asyncio.get_running_loop().time() + seconds)

    async def __aenter__(self) -> Deadline:
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("Deadline must be used inside a task")
        self._task = task
        self._cancelling = task.cancelling()
        self._wheel = timer_wheel()
        self.reschedule(self._when)
        return self

    def reschedule(self, when: float | None) -> None:
        if self._expired:
            raise RuntimeError("Deadline has already expired")
        self._when = when
        if self._timer is not None:
            self._timer.cancel()
        self._timer = None if when is None else self._wheel.call_at(when, self._expire)

    def expired(self) -> bool:
        return self._expired

    def _expire(self) -> None:
        self._timer = None
        self._expired = True
        self._task.cancel()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        _tb: TracebackType | None,
    ) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if (
            self._expired
            and self._task.uncancel() <= self._cancelling
            and exc_type is asyncio.CancelledError
        ):
            raise TimeoutError from exc
