"""Guessing secrets concurrently: every guess is counted before it is checked.

Checking first and counting after let 60 concurrent wrong passwords for one account all be
verified against a limit of 5. Here the same burst is sent at each place a secret is checked —
sign-in, the second factor, the recovery-code and two-factor endpoints, the password
confirmation — with limits in memory and in Redis; no more than the limit may be checked.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pyotp
import pytest

from app.ratelimit.limiter import RateLimiter
from tests.auth.conftest import PASSWORD, sign_up
from tests.auth.test_two_factor import _enrol, _password_step, _second_step, code_for
from tests.conftest import Account, Harness, HarnessFactory

LIMIT = 5
BURST = 60


@pytest.fixture(params=["memory", "redis"])
async def guarded(request: pytest.FixtureRequest, harness_factory: HarnessFactory) -> Harness:
    redis: dict[str, Any] = {}
    if request.param == "redis":
        url = request.getfixturevalue("redis_url")
        redis = {"url": url, "key_prefix": f"guess{uuid.uuid4().hex[:8]}"}
    return await harness_factory(
        redis=redis,
        runtime={"login_max_failures_per_account_ip": LIMIT, "login_max_failures_per_ip": 1000},
    )


def count_checks(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Every password verification, second-factor check and enrolment-code comparison."""
    from app.auth import two_factor

    checked: Counter[str] = Counter()
    hasher = harness.app.state.ctx.hasher
    real_verify = hasher._verify_sync

    def verify(password: str, password_hash: str) -> tuple[bool, str | None]:
        checked["password"] += 1
        return real_verify(password, password_hash)

    real_check = two_factor.check

    async def check(*args: Any, **kwargs: Any) -> bool:
        checked["second factor"] += 1
        await asyncio.sleep(0.01)  # the comparison takes a moment: the burst overlaps it
        return await real_check(*args, **kwargs)

    real_step = two_factor.matching_step

    def step(secret: str, code: str, now: float | None = None) -> int | None:
        checked["code"] += 1
        return real_step(secret, code, now)

    monkeypatch.setattr(hasher, "_verify_sync", verify)
    monkeypatch.setattr(two_factor, "check", check)
    monkeypatch.setattr(two_factor, "matching_step", step)
    return checked


async def burst(send: Callable[[int], Awaitable[httpx.Response]]) -> Counter[int]:
    responses = await asyncio.gather(*(send(n) for n in range(BURST)))
    return Counter(r.status_code for r in responses)


async def test_concurrent_wrong_passwords_are_checked_at_most_the_limit(
    guarded: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    await sign_up(guarded, "victim")
    checked = count_checks(guarded, monkeypatch)
    for path in ("/api/auth/login", "/api/auth/admin/login"):
        checked.clear()
        statuses = await burst(
            lambda n, path=path: guarded.client.post(  # type: ignore[misc]
                path, json={"username": "victim", "password": f"guess-{n}"}
            )
        )
        assert checked["password"] <= LIMIT, (path, checked)
        assert statuses[429] >= BURST - LIMIT, (path, statuses)
        assert set(statuses) <= {401, 429}, statuses


async def test_a_success_does_not_use_up_the_address_allowance(guarded: Harness) -> None:
    """Counting before checking must not turn successes into failures: many sign-ins from one
    address (an office behind one NAT) are not throttled."""
    accounts = [await sign_up(guarded, f"colleague{n}") for n in range(3)]
    signed_in = [
        await guarded.login(account.username, PASSWORD)  # asserts 200
        for _ in range(2 * LIMIT)  # each account more often than its failure allowance
        for account in accounts
    ]
    assert len(signed_in) == 6 * LIMIT
    assert all(tokens["access_token"] for tokens in signed_in)


async def _two_factor_account(harness: Harness) -> tuple[Account, str, list[str]]:
    account = await sign_up(harness, f"tf{uuid.uuid4().hex[:6]}")
    secret, recovery = await _enrol(harness, account)
    return account, secret, recovery


async def test_concurrent_wrong_second_factors_are_checked_at_most_the_limit(
    guarded: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    account, _secret, _ = await _two_factor_account(guarded)
    challenge = (await _password_step(guarded, account.username))["challenge_token"]
    checked = count_checks(guarded, monkeypatch)
    for factor in ("code", "recovery_code"):
        checked.clear()
        statuses = await burst(
            lambda n, factor=factor: _second_step(  # type: ignore[misc]
                guarded,
                challenge,
                **{factor: f"{n:06d}" if factor == "code" else f"wrong-code-{n:04d}"},
            )
        )
        assert checked["second factor"] <= LIMIT, (factor, checked)
        assert statuses[429] >= BURST - LIMIT, (factor, statuses)


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/auth/2fa/recovery-codes", lambda n: {"code": f"{n:06d}"}),
        ("/api/auth/2fa/disable", lambda n: {"password": PASSWORD, "code": f"{n:06d}"}),
        (
            "/api/auth/2fa/disable",
            lambda n: {"password": PASSWORD, "recovery_code": f"wrong-code-{n:04d}"},
        ),
        (
            "/api/auth/me/password",
            lambda n: {"current_password": f"g{n}x", "new_password": "n" * 9},
        ),
    ],
    ids=["recovery-codes", "disable-code", "disable-recovery", "password-change"],
)
async def test_every_other_secret_check_is_counted_first(
    guarded: Harness,
    monkeypatch: pytest.MonkeyPatch,
    path: str,
    body: Callable[[int], dict[str, str]],
) -> None:
    account, _secret, _ = await _two_factor_account(guarded)
    checked = count_checks(guarded, monkeypatch)
    statuses = await burst(
        lambda n: guarded.client.post(path, json=body(n), headers=account.headers)
    )
    # The disable call checks the password first (right here), then the code: the right password
    # must not wipe out the failed codes.
    assert checked["second factor"] <= LIMIT, checked
    if "current_password" in body(0):
        assert checked["password"] <= LIMIT, checked
    assert statuses[429] >= BURST - 2 * LIMIT, statuses
    assert not {200, 204} & set(statuses)


async def test_enrolment_codes_are_counted_first(
    guarded: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    account = await sign_up(guarded, "enrolling")
    setup = await guarded.client.post(
        "/api/auth/2fa/setup", json={"password": PASSWORD}, headers=account.headers
    )
    secret = setup.json()["secret"]
    right = pyotp.TOTP(secret).now()
    checked = count_checks(guarded, monkeypatch)
    statuses = await burst(
        lambda n: guarded.client.post(
            "/api/auth/2fa/enable",
            json={"code": f"{n:06d}" if f"{n:06d}" != right else "000000"},
            headers=account.headers,
        )
    )
    assert checked["code"] <= LIMIT, checked
    assert statuses[429] >= BURST - LIMIT, statuses


async def test_a_challenge_signs_in_once(guarded: Harness) -> None:
    """After a second factor succeeded, the same challenge is spent — even with another valid
    code or recovery code, and even when two requests race with it."""
    account, secret, recovery = await _two_factor_account(guarded)
    challenge = (await _password_step(guarded, account.username))["challenge_token"]
    first = await _second_step(guarded, challenge, recovery_code=recovery[0])
    assert first.status_code == 200, first.text
    for factor in ({"recovery_code": recovery[1]}, {"code": code_for(secret, steps_ahead=1)}):
        again = await _second_step(guarded, challenge, **factor)
        assert again.status_code == 401
        assert again.json()["code"] == "challenge_expired"
    # Two at once with one fresh challenge: one session, not two.
    challenge = (await _password_step(guarded, account.username))["challenge_token"]
    raced = await asyncio.gather(
        _second_step(guarded, challenge, recovery_code=recovery[2]),
        _second_step(guarded, challenge, recovery_code=recovery[3]),
    )
    assert sorted(r.status_code for r in raced) == [200, 401]


@pytest.mark.parametrize("backend", ["memory", "redis"])
async def test_a_refund_takes_back_one_hit(backend: str, request: pytest.FixtureRequest) -> None:
    redis = None
    if backend == "redis":
        from app.core.redis import create_redis

        redis = create_redis(request.getfixturevalue("redis_url"))
    limiter = RateLimiter(redis, namespace=f"refund{time.time_ns()}")
    try:
        for _ in range(3):
            assert await limiter.hit("k", 3, 60) is None
        assert await limiter.hit("k", 3, 60) is not None  # full
        await limiter.refund("k", 3, 60)
        assert await limiter.peek("k", 3, 60) is None
        assert await limiter.hit("k", 3, 60) is None
        assert await limiter.hit("k", 3, 60) is not None  # exactly one came back
    finally:
        if redis is not None:
            await redis.aclose()
