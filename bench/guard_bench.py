"""Per-request cost of the IP blacklist and the rate limits (the work added to every model call).

    .venv/bin/python bench/guard_bench.py [--redis redis://127.0.0.1:6379/15] [--requests N]

Measures, in this process, the components the request path calls:
  blacklist    `BlockList.match` with 10,000 rules (IPv4 and IPv6 ranges, nested), for addresses
               that are and are not listed
  guard        `ClientGuard.check` on another rate-limited path: the blacklist plus the per-address
               RPM
  admission    a model call's `Admission.admit` and its end: the address's RPM, key and user RPM,
               key and user concurrency slots, and a budget reservation (a key budget and a
               balance) — then the slots' release and the cost's settlement
  total        the guard on a model call's path (the blacklist only: its address is counted by
               the admission) + admission: what the limits add to one model call
each on the in-memory backend and (with --redis) on Redis, where a hit costs a round trip.
Writes bench/results/guard-<time>.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import random
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "backend"))

from redis.asyncio import Redis  # noqa: E402
from redis.exceptions import RedisError  # noqa: E402

from app.ipfilter.guard import ClientGuard  # noqa: E402
from app.ipfilter.cache import BlockListCache as BlockList  # noqa: E402
from app.ipfilter.cache import BlockRule  # noqa: E402
from app.billing.ledger import Claim, MemoryLedger, RedisLedger, Reservation  # noqa: E402
from app.ratelimit.admission import Admission, CallerLimits  # noqa: E402
from app.ratelimit.limiter import RateLimiter  # noqa: E402
from app.ratelimit.slots import ConcurrencySlots  # noqa: E402
from app.runtime_settings.cache import RuntimeSettingsCache as RuntimeSettingsStore  # noqa: E402
from app.core.runtime_values import RuntimeValues  # noqa: E402

RULES = 10_000
ROUNDS = 5


def make_rules(rng: random.Random) -> list[BlockRule]:
    rules: list[BlockRule] = []
    seen: set[object] = set()
    while len(rules) < RULES:
        if rng.random() < 0.7:
            prefix = rng.choice([16, 20, 24, 28, 32, 32, 32])
            network: object = ipaddress.ip_network((rng.getrandbits(32), prefix), strict=False)
        else:
            prefix = rng.choice([32, 48, 64, 128])
            network = ipaddress.ip_network(
                ((0x2001_0DB8 << 96) | rng.getrandbits(96), prefix), strict=False
            )
        if network not in seen:
            seen.add(network)
            rules.append(BlockRule(len(rules) + 1, network))  # type: ignore[arg-type]
    return rules


def addresses(rng: random.Random, rules: list[BlockRule], count: int) -> list[str]:
    """Half inside a listed range, half random (mostly unlisted)."""
    out = []
    for index in range(count):
        if index % 2:
            network = rng.choice(rules).network
            offset = rng.randrange(network.num_addresses)
            out.append(str(network.network_address + offset))
        else:
            out.append(str(ipaddress.ip_address(rng.getrandbits(32))))
    return out


def per_call_us(total_seconds: float, calls: int) -> float:
    return total_seconds / calls * 1e6


async def measure(calls: int, one: Callable[[int], Awaitable[None]]) -> float:
    """Median over rounds of the µs per call."""
    results = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        for index in range(calls):
            await one(index)
        results.append(per_call_us(time.perf_counter() - started, calls))
    return statistics.median(results)


async def backend_costs(
    redis: Redis | None, blocklist: BlockList, ips: list[str], calls: int
) -> dict[str, float]:
    namespace = f"bench{uuid.uuid4().hex[:6]}"
    runtime = RuntimeSettingsStore(
        RuntimeValues(ip_rpm=10**6, default_user_rpm=10**6, default_user_concurrent_streams=10**4)
    )
    limiter = RateLimiter(redis, namespace=namespace)
    slots = ConcurrencySlots(redis, namespace=namespace)
    memory_ledger = MemoryLedger() if redis is None else None
    ledger = memory_ledger if memory_ledger is not None else RedisLedger(redis, namespace)  # type: ignore[arg-type]
    admission = Admission(limiter, slots, runtime, redis, namespace, memory_ledger)
    guard = ClientGuard(
        blocklist, admission.count_address, runtime, deferred_paths=frozenset({"/v1/chat/completions"})
    )
    limits = CallerLimits(key_rpm=10**6, key_streams=10**4)
    unlisted = [ip for ip in ips if blocklist.match(ip) is None][:200]

    async def nothing_spent() -> int:
        return 0

    async def plenty_left() -> int:
        return 10**15

    budgets = [
        Reservation(
            [
                Claim(f"key:{n}:2026-12", 10**15, "this API key's monthly budget", nothing_spent),
                Claim(f"balance:{n}", None, "your balance", plenty_left),
            ],
            1_000_000,
        )
        for n in range(50)
    ]

    async def guard_once(index: int) -> None:
        await guard.check(unlisted[index % len(unlisted)], "/api/chat", "bench")

    timings = {"start": 0.0, "end": 0.0}

    async def admit_once(index: int) -> None:
        who = 1 + index % 50
        started = time.perf_counter()
        ticket = await admission.admit(
            who, who, limits, client_ip=unlisted[index % len(unlisted)], budget=budgets[who - 1]
        )
        admitted = time.perf_counter()
        ticket.release()
        assert ticket.hold is not None
        settling = ledger.settle(ticket.hold, 500_000)
        if settling is not None:
            await settling
        timings["start"] += admitted - started
        timings["end"] += time.perf_counter() - admitted

    async def total_once(index: int) -> None:
        await guard.check(unlisted[index % len(unlisted)], "/v1/chat/completions", "bench")
        await admit_once(index)

    costs = {
        "guard": await measure(calls, guard_once),
        "admission": await measure(calls, admit_once),
        "total": await measure(calls, total_once),
    }
    # Of the admission: before the call (on its path) and after its answer (its slots and cost).
    measured = calls * ROUNDS * 2  # admit_once ran in both the admission and the total rounds
    costs["admission_start"] = timings["start"] / measured * 1e6
    costs["admission_end"] = timings["end"] / measured * 1e6
    await slots.close()
    return costs


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--redis", default=None)
    parser.add_argument("--requests", type=int, default=20_000)
    args = parser.parse_args()
    rng = random.Random(42)
    rules = make_rules(rng)
    blocklist = BlockList(rules)
    ips = addresses(rng, rules, 20_000)
    listed = sum(blocklist.match(ip) is not None for ip in ips)

    def match_all() -> float:
        started = time.perf_counter()
        for ip in ips:
            blocklist.match(ip)
        return per_call_us(time.perf_counter() - started, len(ips))

    results: dict[str, object] = {
        "rules": RULES,
        "addresses": len(ips),
        "listed_share": round(listed / len(ips), 3),
        "blacklist_match_us": round(statistics.median(match_all() for _ in range(ROUNDS)), 2),
        "memory": {
            k: round(v, 2) for k, v in (await backend_costs(None, blocklist, ips, args.requests)).items()
        },
    }
    redis = Redis.from_url(args.redis) if args.redis else None
    if redis is not None:
        try:
            await redis.ping()
        except RedisError as exc:
            print(f"Redis at {args.redis} is unreachable ({exc}); measuring memory only")
            await redis.aclose()
            redis = None
    if redis is not None:
        redis_costs = await backend_costs(redis, blocklist, ips, max(2000, args.requests // 10))
        results["redis"] = {k: round(v, 2) for k, v in redis_costs.items()}
        rtt = await measure(2000, lambda _i: redis.ping())  # type: ignore[arg-type,return-value]
        results["redis_ping_us"] = round(rtt, 2)
        await redis.aclose()
    out_dir = ROOT / "bench" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (out_dir / f"guard-{stamp}.json").write_text(json.dumps(results, indent=2))
    memory = results["memory"]
    assert isinstance(memory, dict)
    print(f"Blacklist with {RULES:,} rules ({results['listed_share']:.0%} of lookups listed)")
    print()
    print("| step | memory backend, µs/request | Redis backend, µs/request |")
    print("|---|---|---|")
    redis_row = results.get("redis", {})
    assert isinstance(redis_row, dict)
    print(f"| blacklist match | {results['blacklist_match_us']} | (same: in process) |")
    for name, label in [
        ("guard", "blacklist + per-address RPM (another rate-limited path)"),
        ("admission", "address + key + user RPM, key + user slots, budget + balance (start and end)"),
        ("admission_start", "  of which before the call: one script"),
        ("admission_end", "  of which after its answer: slots and cost, one script"),
        ("total", "everything the limits add to one model call"),
    ]:
        print(f"| {label} | {memory[name]} | {redis_row.get(name, '—')} |")
    if "redis_ping_us" in results:
        ping = float(results["redis_ping_us"])  # type: ignore[arg-type]
        start = float(redis_row["admission_start"])
        print(f"\nRedis round trip (PING) here: {ping} µs")
        print(
            f"A model call's admission with Redis (before the call): {start / ping:.2f}× PING "
            "(target ≤ 2); its end, after the answer, is one more script"
        )
    print(f"A model call's limits in memory: {memory['total']} µs (target ≤ 30)")


if __name__ == "__main__":
    asyncio.run(main())
