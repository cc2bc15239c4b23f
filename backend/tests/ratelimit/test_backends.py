"""The limiter and the concurrency caps, on both backends: memory and Redis."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from app.core.errors import RateLimitedError
from app.core.runtime_values import RuntimeValues
from app.ratelimit.admission import Admission, CallerLimits
from app.ratelimit.limiter import RateLimiter
from app.ratelimit.memory import SWEEP_SECONDS, MovingWindows
from app.ratelimit.slots import ConcurrencySlots
from app.runtime_settings.cache import RuntimeSettingsCache


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_moving_window_never_admits_more_than_the_limit_in_any_window() -> None:
    """A fixed window lets 2× through around its boundary; the moving window does not."""
    clock = FakeClock()
    windows = MovingWindows(clock)
    admitted: list[float] = []
    for _ in range(1200):  # 120 s of one attempt every 0.1 s, limit 10 per 60 s
        if windows.hit("k", 10, 60) == 0:
            admitted.append(clock.now)
        clock.now += 0.1
    for t in admitted:
        assert sum(1 for u in admitted if t - 60 < u <= t) <= 10
    assert len(admitted) == 20  # 10 at once, then 10 more once the first ones left the window
    assert admitted[10] - admitted[0] >= 60


def test_rejection_says_when_one_more_fits() -> None:
    clock = FakeClock()
    windows = MovingWindows(clock)
    for _ in range(3):
        assert windows.hit("k", 3, 60) == 0
        clock.now += 10
    assert windows.hit("k", 3, 60) == pytest.approx(30)  # the first hit leaves at t+60
    assert windows.peek("k", 3, 60) == pytest.approx(30)
    clock.now += 30.01
    assert windows.peek("k", 3, 60) == 0
    assert windows.hit("k", 3, 60, cost=2) > 0  # two more do not fit yet


def test_idle_keys_are_swept_so_memory_stays_flat() -> None:
    clock = FakeClock()
    windows = MovingWindows(clock)
    for index in range(10_000):
        windows.hit(f"ip:{index}", 5, 60)
    assert len(windows) == 10_000
    clock.now += 60 + SWEEP_SECONDS
    windows.hit("ip:new", 5, 60)
    assert len(windows) == 1


@pytest.fixture
async def redis_clients(redis_url: str) -> AsyncIterator[tuple[Redis, Redis, str]]:
    """Two clients, as two processes would have, and a fresh key namespace."""
    first, second = Redis.from_url(redis_url), Redis.from_url(redis_url)
    yield first, second, f"t{uuid.uuid4().hex[:8]}"
    await first.aclose()
    await second.aclose()


async def test_redis_limits_are_shared_between_processes(
    redis_clients: tuple[Redis, Redis, str],
) -> None:
    first_redis, second_redis, namespace = redis_clients
    first = RateLimiter(first_redis, namespace=namespace)
    second = RateLimiter(second_redis, namespace=namespace)
    results = await asyncio.gather(
        *(limiter.hit("user:1", 10, 60) for limiter in [first, second] * 10)
    )
    assert sum(r is None for r in results) == 10
    rejection = next(r for r in results if r is not None)
    assert rejection.limit == 10
    assert 1 <= rejection.reset_after <= 60
    assert await first.peek("user:1", 10, 60) is not None
    await second.reset("user:1", 10, 60)
    assert await first.peek("user:1", 10, 60) is None


async def test_memory_slots_cap_and_release() -> None:
    slots = ConcurrencySlots()
    leases = [await slots.acquire("user:1", 2) for _ in range(3)]
    assert leases[2] is None
    assert slots.in_use("user:1") == 2
    for lease in leases[:2]:
        assert lease is not None
        slots.release(lease)
    assert slots.in_use("user:1") == 0
    assert await slots.acquire("user:1", 2) is not None


async def test_redis_slots_are_shared_and_expire_when_a_process_dies(
    redis_clients: tuple[Redis, Redis, str],
) -> None:
    first_redis, second_redis, namespace = redis_clients
    first = ConcurrencySlots(first_redis, namespace=namespace)
    second = ConcurrencySlots(second_redis, namespace=namespace)
    held = [await first.acquire("user:7", 3), await second.acquire("user:7", 3)]
    assert all(lease is not None for lease in held)
    assert await second.acquire("user:7", 2) is None  # two held across both processes
    lease = held[0]
    assert lease is not None
    first.release(lease)
    await first.close()  # waits for the release to reach Redis
    assert await second.acquire("user:7", 2) is not None
    # A lease whose owner died (no renewals) stops counting once it expires.
    key = f"{namespace}:slots:user:9"
    await first_redis.zadd(key, {"dead-process-1": time.time() - 1})
    assert await second.acquire("user:9", 1) is not None
    await second.close()


async def _admission_is_all_or_nothing(admission: Admission, slots: ConcurrencySlots) -> None:
    limits = CallerLimits(user_rpm=3, user_streams=2, key_rpm=1, key_streams=5)
    release = (await admission.admit(1, 10, limits)).release  # key 10: its one call this minute
    with pytest.raises(RateLimitedError) as caught:
        await admission.admit(1, 10, limits)
    assert caught.value.code == "key_rate_limited"
    # The refused call was not counted against the user: two more fit through another key.
    second = (await admission.admit(1, 11, limits)).release
    with pytest.raises(RateLimitedError) as caught:
        await admission.admit(1, 12, limits)
    assert caught.value.code == "user_concurrency"  # two running: the user's cap
    release()
    await slots.settle()  # with Redis, a release is sent in the background
    third = (await admission.admit(1, 12, limits)).release
    with pytest.raises(RateLimitedError) as caught:
        await admission.admit(1, 13, limits)
    assert caught.value.code in ("user_rate_limited", "user_concurrency")
    assert caught.value.headers["X-RateLimit-Remaining"] == "0"
    second()
    third()
    await slots.settle()
    with pytest.raises(RateLimitedError) as caught:
        await admission.admit(1, 14, limits)
    assert caught.value.code == "user_rate_limited"  # three calls this minute, none running
    assert 1 <= caught.value.retry_after <= 60
    await slots.close()


def _store() -> RuntimeSettingsCache:
    return RuntimeSettingsCache(RuntimeValues())


async def test_admission_in_memory() -> None:
    slots = ConcurrencySlots()
    await _admission_is_all_or_nothing(Admission(RateLimiter(), slots, _store()), slots)
    assert slots.in_use("user:1") == 0


async def test_admission_in_redis_shared_by_two_processes(
    redis_clients: tuple[Redis, Redis, str],
) -> None:
    first_redis, second_redis, namespace = redis_clients
    slots = ConcurrencySlots(first_redis, namespace=namespace)
    admission = Admission(
        RateLimiter(first_redis, namespace), slots, _store(), first_redis, namespace
    )
    await _admission_is_all_or_nothing(admission, slots)
    # A second process sees the same user's minute as full.
    other_slots = ConcurrencySlots(second_redis, namespace=namespace)
    other = Admission(
        RateLimiter(second_redis, namespace), other_slots, _store(), second_redis, namespace
    )
    with pytest.raises(RateLimitedError):
        await other.admit(1, None, CallerLimits(user_rpm=3))
    assert await first_redis.zcard(f"{namespace}:slots:user:1") == 0  # every slot released
    await other_slots.close()
