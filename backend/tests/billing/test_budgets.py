"""Budgets and balances hold under concurrency: the worst case is reserved before a call and the
real cost settled after, so concurrent calls never spend more than a limit together — in memory,
in Redis shared by two ledgers, and end to end through the gateway (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy import func, select

from app.billing.ledger import Claim, InsufficientQuotaError, RedisLedger, Reservation
from app.core.runtime_values import RuntimeValues
from app.devtools.mock_upstream import MockServer
from app.models import CallLog
from app.ratelimit.admission import Admission, CallerLimits
from app.ratelimit.limiter import RateLimiter
from app.ratelimit.slots import ConcurrencySlots
from app.runtime_settings.cache import RuntimeSettingsCache
from tests.live import LiveGateway


def _claims(limit: int | None, loaded: int = 0, key: str = "user:1:2026-12") -> list[Claim]:
    async def load() -> int:
        await asyncio.sleep(0.01)  # concurrent first uses all wait for one load
        return loaded

    return [Claim(key=key, limit=limit, what="your account's monthly budget", load=load)]


def _admission(redis: Redis | None = None, namespace: str = "acgw") -> Admission:
    """An admission with no rate or concurrency limit in the way: the budget is what is tested."""
    runtime = RuntimeSettingsCache(RuntimeValues())
    return Admission(
        RateLimiter(redis, namespace), ConcurrencySlots(redis, namespace=namespace), runtime,
        redis, namespace,
    )  # fmt: skip


async def _race(
    admissions: list[Admission], claims: list[Claim], calls: int, amount: int
) -> list[Any]:
    async def one(index: int) -> Any:
        admission = admissions[index % len(admissions)]
        no_limits = CallerLimits(user_rpm=0, user_streams=0)
        try:
            ticket = await admission.admit(1, None, no_limits, budget=Reservation(claims, amount))
        except InsufficientQuotaError as error:
            return error
        return ticket.hold

    return await asyncio.gather(*(one(i) for i in range(calls)))


async def test_memory_ledger_admits_exactly_what_the_limit_allows() -> None:
    admission = _admission()
    ledger = admission.memory_ledger
    claims = _claims(limit=10_000, loaded=1_000)
    outcomes = await _race([admission], claims, 100, 1_000)
    held = [o for o in outcomes if not isinstance(o, InsufficientQuotaError)]
    refused = [o for o in outcomes if isinstance(o, InsufficientQuotaError)]
    assert (len(held), len(refused)) == (9, 91)  # 1,000 already spent: room for 9 more
    assert refused[0].status_code == 429
    assert refused[0].code == "insufficient_quota"
    assert "your account's monthly budget" in refused[0].message
    for hold in held[:4]:
        assert ledger.settle(hold, 0) is None  # failed calls cost nothing: room comes back
    for hold in held[4:]:
        ledger.settle(hold, 1_000)
    ledger.settle(held[4], 1_000)  # settling twice changes nothing
    again = await _race([admission], claims, 10, 1_000)
    assert sum(not isinstance(o, InsufficientQuotaError) for o in again) == 4


async def test_a_balance_is_held_and_credited() -> None:
    admission = _admission()
    claims = _claims(limit=None, loaded=3_000, key="balance:7")
    outcomes = await _race([admission], claims, 10, 1_000)
    assert sum(not isinstance(o, InsufficientQuotaError) for o in outcomes) == 3
    await admission.memory_ledger.credit("balance:7", 2_000)
    more = await _race([admission], claims, 10, 1_000)
    assert sum(not isinstance(o, InsufficientQuotaError) for o in more) == 2


async def test_redis_ledgers_in_two_processes_admit_exactly_what_the_limit_allows(
    redis_url: str,
) -> None:
    namespace = f"t{uuid.uuid4().hex[:8]}"
    clients = [Redis.from_url(redis_url), Redis.from_url(redis_url)]
    try:
        admissions = [_admission(client, namespace) for client in clients]
        ledgers = [RedisLedger(client, namespace) for client in clients]
        claims = _claims(limit=10_000) + _claims(limit=None, loaded=50_000, key="balance:1")
        outcomes = await _race(admissions, claims, 100, 1_000)
        held = [o for o in outcomes if not isinstance(o, InsufficientQuotaError)]
        assert len(held) == 10
        for hold in held:
            await ledgers[0].settle(hold, 500)  # each cost less than reserved
        outcomes = await _race(admissions, claims, 100, 1_000)
        assert sum(not isinstance(o, InsufficientQuotaError) for o in outcomes) == 5
        await ledgers[1].credit("balance:1", 1)
        raw = await clients[0].hgetall(f"{namespace}:ledger:balance:1")
        assert int(raw[b"limit"]) == 50_001
        assert int(raw[b"spent"]) == 5_000
    finally:
        for client in clients:
            await client.aclose()


def _setup(gateway: LiveGateway, mock: MockServer, **key_fields: Any) -> tuple[str, str]:
    gateway.create_channel(base_url=mock.base_url(), models=["mock-gpt", "long"],
                           model_mapping={"long": "mock-gpt?chunks=200"})  # fmt: skip
    for model, extra in (("mock-gpt", {}), ("long", {"max_output_tokens": 40})):
        response = gateway.http.post(
            "/api/admin/prices",
            json={"model": model, "input": "0", "output": "1000", **extra},
            headers=gateway.admin,
        )
        assert response.status_code == 201, response.text
    me = gateway.http.get("/api/auth/me", headers=gateway.admin).json()
    # No rate limits in the way: the budget is what is tested.
    gateway.http.patch(
        f"/api/admin/users/{me['id']}",
        json={"rpm_limit": 0, "concurrent_streams_limit": 0},
        headers=gateway.admin,
    )
    return gateway.create_key(**key_fields), str(me["id"])


def test_a_hundred_concurrent_calls_never_spend_more_than_the_budget(
    gateway: LiveGateway, mock_upstream: MockServer
) -> None:
    # Each call: at most 8 output tokens at 1,000 per million = 0.008; the budget pays for 10.
    key, _ = _setup(gateway, mock_upstream, budget="0.08", budget_period="day")
    body = {"model": "mock-gpt", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}

    def call(_: int) -> httpx.Response:
        return httpx.post(
            f"{gateway.url}/v1/chat/completions",
            json=body,
            headers={"Authorization": f"Bearer {key}"},
            timeout=30,
        )

    with ThreadPoolExecutor(max_workers=50) as pool:
        responses = list(pool.map(call, range(100)))
    codes = [r.status_code for r in responses]
    assert codes.count(200) == 10, codes
    assert codes.count(429) == 90
    refused = next(r for r in responses if r.status_code == 429).json()["error"]
    assert refused["code"] == "insufficient_quota"
    assert "this API key's daily budget" in refused["message"]
    rows = gateway.wait_for_logs(100)

    async def spent() -> int:
        async with gateway.ctx.sessionmaker() as db:
            return int(await db.scalar(select(func.sum(CallLog.cost))) or 0)

    assert gateway.run(spent) == 80_000_000  # exactly the budget, never more
    assert sum(r.end_reason == "rejected" for r in rows) == 90
    assert call(0).status_code == 429  # and it stays spent
    keys = gateway.http.get("/api/keys", headers=gateway.admin).json()["items"]
    capped = next(k for k in keys if k["budget"] == "0.08")
    assert (capped["spent"], capped["budget_period"]) == ("0.08", "day")
    users = gateway.http.get("/api/admin/users", headers=gateway.admin).json()["items"]
    assert users[0]["spent"] == "0.08"  # the account's spend this month (it has no budget)
    assert len(users[0]["spent_period"]) == 7  # 2026-12
    mine = gateway.http.get("/api/spending", headers=gateway.admin).json()
    assert mine["keys"][-1]["budget"] == {
        "limit": "0.08",
        "period": "day",
        "period_label": mine["keys"][-1]["period_label"],
        "spent": "0.08",
        "left": "0",
    }


def test_a_stream_without_max_tokens_is_cut_at_what_its_budget_covers(
    gateway: LiveGateway, mock_upstream: MockServer
) -> None:
    """No max_tokens: the model's output cap (40 tokens, from its price) is reserved, and the
    answer is cut before it would cost more."""
    key, _ = _setup(gateway, mock_upstream, budget="1", budget_period="month")
    with httpx.stream(
        "POST",
        f"{gateway.url}/v1/chat/completions",
        json={"model": "long", "stream": True, "messages": [{"role": "user", "content": "hi"}]},
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    ) as stream:
        body = stream.read().decode()
    frames = [f for f in body.split("\n\n") if f]
    assert '"insufficient_quota"' in frames[-1]
    assert "data: [DONE]" not in body
    relayed = sum('"content"' in f for f in frames)
    assert 0 < relayed < 40
    row = gateway.wait_for_logs(1)[0]
    assert (row.end_reason, row.status_code) == ("rejected", 429)
    assert row.cost is not None
    assert row.cost <= 40 * 1_000_000  # within the 40 tokens reserved (0.00004)


def test_a_balance_pays_for_calls_and_top_ups_and_codes_refill_it(
    gateway: LiveGateway, mock_upstream: MockServer
) -> None:
    key, user_id = _setup(gateway, mock_upstream)
    bearer = {"Authorization": f"Bearer {key}"}
    body = {"model": "mock-gpt", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}
    topup = gateway.http.post(
        f"/api/admin/users/{user_id}/balance",
        json={"amount": "0.016", "note": "trial"},
        headers=gateway.admin,
    )
    assert topup.status_code == 201, topup.text
    assert (topup.json()["kind"], topup.json()["balance_after"]) == ("topup", "0.016")
    results = [gateway.http.post("/v1/chat/completions", json=body, headers=bearer).status_code
               for _ in range(3)]  # fmt: skip
    assert results == [200, 200, 429]
    gateway.wait_for_logs(3)
    assert gateway.http.get("/api/spending", headers=gateway.admin).json()["balance"] == "0"
    below = gateway.http.post(
        f"/api/admin/users/{user_id}/balance", json={"amount": "-1"}, headers=gateway.admin
    )
    assert below.status_code == 409

    made = gateway.http.post(
        "/api/admin/codes",
        json={"count": 3, "amount": "0.008", "batch": "december"},
        headers=gateway.admin,
    ).json()
    assert len(set(made["codes"])) == 3
    code = made["codes"][0]

    def redeem(_: int) -> int:
        return httpx.post(
            f"{gateway.url}/api/spending/redeem",
            json={"code": code.lower()},  # typed by hand: case and dashes do not matter
            headers=gateway.admin,
            timeout=30,
        ).status_code

    with ThreadPoolExecutor(max_workers=10) as pool:
        tries = list(pool.map(redeem, range(10)))
    assert sorted(tries) == [200] + [400] * 9  # one code, once
    assert gateway.http.post("/v1/chat/completions", json=body, headers=bearer).status_code == 200
    trail = gateway.http.get(f"/api/admin/users/{user_id}/balance", headers=gateway.admin).json()
    assert [e["kind"] for e in trail["items"]] == ["code", "topup"]
    codes = gateway.http.get(
        "/api/admin/codes", params={"batch": "december"}, headers=gateway.admin
    ).json()
    assert sorted(c["status"] for c in codes["items"]) == ["redeemed", "unused", "unused"]
    unused = next(c for c in codes["items"] if c["status"] == "unused")
    assert gateway.http.delete(f"/api/admin/codes/{unused['id']}",
                               headers=gateway.admin).status_code == 204  # fmt: skip


def test_an_unpriced_model_is_refused_to_a_limited_caller(
    gateway: LiveGateway, mock_upstream: MockServer
) -> None:
    gateway.create_channel(base_url=mock_upstream.base_url(), models=["mock-gpt"])
    key = gateway.create_key(budget="1")
    response = httpx.post(
        f"{gateway.url}/v1/chat/completions",
        json={"model": "mock-gpt", "messages": [{"role": "user", "content": "hi"}]},
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "model_unpriced"
    unlimited = gateway.create_key()
    assert (
        httpx.post(
            f"{gateway.url}/v1/chat/completions",
            json={"model": "mock-gpt", "messages": [{"role": "user", "content": "hi"}]},
            headers={"Authorization": f"Bearer {unlimited}"},
            timeout=30,
        ).status_code
        == 200
    )


@pytest.mark.parametrize(("budget", "status"), [("-1", 422), ("abc", 422), ("1.5", 201)])
def test_budget_values_are_checked(gateway: LiveGateway, budget: str, status: int) -> None:
    response = gateway.http.post(
        "/api/keys", json={"name": "k", "budget": budget}, headers=gateway.admin
    )
    assert response.status_code == status, response.text
    if status == 201:
        assert (response.json()["budget"], response.json()["budget_period"]) == ("1.5", "month")
