"""Scaling with workers: the gateway with WORKERS=1, 2 … as CPU per call and per relayed chunk,
and whether every call leaves its log row when several workers share one SQLite file.

    .venv/bin/python bench/scale.py                 # WORKERS=1 and 2 (SQLite + Redis), ~1 minute
    .venv/bin/python bench/scale.py --workers 1 2 4 8 --seconds 10 --database postgresql+asyncpg://…

CPU is the sum over the server's whole process tree (the supervisor and every worker), read from
/proc, per non-stream call (concurrency 32, 0 ms upstream) and per relayed chunk (200-chunk
streams, concurrency 32). On this two-core machine the load generator and the mock upstream share
the cores with the workers, so requests/s says little; CPU per unit of work is what compares.
On a bigger machine, pin the gateway to its own cores (the `taskset` below takes `--cores`) and run
several load generators (`--generators`), so neither the mock nor the load is the bottleneck.

Also measured: call-log rows written against calls made (the mock upstream's count) after the
load — with several workers on one SQLite file they must match (writes may wait, never fail).
Needs Redis for more than one worker (REDIS_URL, default the local test database 15).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as bench  # noqa: E402  (the single-target benchmark's load and measuring helpers)

PORT = 9621


def tree_cpu_seconds(pid: int | None) -> float:
    """CPU seconds of `pid` and every process below it (uvicorn's workers)."""
    if pid is None:
        return 0.0
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        try:
            total += bench_cpu(current)
        except OSError:
            pass
        todo += children.get(current, [])
    return total


bench_cpu = bench.cpu_seconds
bench.cpu_seconds = tree_cpu_seconds  # the helpers below measure the whole tree


async def mock_total(session: aiohttp.ClientSession) -> int:
    async with session.get(f"http://127.0.0.1:{bench.MOCK_PORT}/_mock/stats") as response:
        return int((await response.json())["total"])


def log_rows(data_dir: Path, database: str | None) -> int | None:
    if database:
        return None  # counted by the caller's own tools on PostgreSQL
    with sqlite3.connect(data_dir / "app.db") as conn:
        return int(conn.execute("SELECT count(*) FROM call_logs").fetchone()[0])


async def one(workers: int, seconds: float, cores: str, database: str | None, redis: str) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix=f"acgw-scale-{workers}-"))
    procs = bench.Processes()
    profile_args = [f"--profile={name}:" + ",".join(f"{k}={v}" for k, v in opts.items()) for name, opts in bench.PROFILES.items()]
    env = {
        **os.environ,
        "PYTHONPATH": str(bench.ROOT / "backend"),
        "DATA_DIR": str(workdir / "data"),
        "PORT": str(PORT),
        "WORKERS": str(workers),
        "ADMIN_PASSWORD": bench.ADMIN_PASSWORD,
        "LLM_CONCURRENCY": "5000",
        "DEFAULT_USER_RPM": "1000000",
        "DEFAULT_USER_CONCURRENT_STREAMS": "10000",
        "IP_RPM": "1000000",
        "REDIS_URL": redis,
        "REDIS_KEY_PREFIX": f"scale{uuid.uuid4().hex[:8]}",
    }
    for name in ("SECRET_KEY", "ENCRYPTION_KEYS"):
        env.pop(name, None)
    if database:
        env["DATABASE_URL"] = database
    else:
        env.pop("DATABASE_URL", None)
    try:
        procs.spawn([bench.PYTHON, "-m", "app.devtools.mock_upstream", "--port", str(bench.MOCK_PORT), *profile_args], bench.CORE_LOAD, workdir / "mock.log", env={**os.environ, "PYTHONPATH": str(bench.ROOT / "backend")})
        server = bench.subprocess.Popen(
            ["taskset", "-c", cores, bench.PYTHON, "-m", "app", "serve"],
            stdout=(workdir / "gateway.log").open("wb"), stderr=bench.subprocess.STDOUT, env=env, cwd=bench.ROOT,
        )
        procs.items.append(server)
        await bench.wait_ready(f"http://127.0.0.1:{bench.MOCK_PORT}/_mock/stats")
        await bench.wait_ready(f"http://127.0.0.1:{PORT}/readyz")
        key = await bench.configure_gateway(f"http://127.0.0.1:{PORT}")
        target = bench.Target("gateway", f"http://127.0.0.1:{PORT}/v1/chat/completions", {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}, "{profile}", server.pid)
        connector = aiohttp.TCPConnector(limit=0, force_close=workers > 1)  # new connections spread over workers
        async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=None)) as session:
            calls_before = await mock_total(session)
            plain = await bench.throughput(session, target, "fast", 32, seconds)
            streams = await bench.streaming(session, target, 32, seconds)
            made = await mock_total(session) - calls_before
        time.sleep(3)  # the writers flush within a second or two
        rows = log_rows(workdir / "data", database)
        log_text = (workdir / "gateway.log").read_text(errors="replace")
        return {
            "workers": workers,
            "rps": round(plain["rps"]),
            "cpu_us_per_request": round(plain["cpu_us_per_request"], 1),
            "chunks_per_s": round(streams["chunks_per_s"]),
            "cpu_us_per_chunk": round(streams["cpu_us_per_chunk"], 2),
            "calls_made": made,
            "log_rows": rows,
            "tracebacks": log_text.count("Traceback"),
            "database_locked": log_text.count("database is locked"),
        }
    finally:
        procs.stop()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--cores", default="0-1", help="cores the gateway may use (taskset list)")
    parser.add_argument("--database", default=None, help="a PostgreSQL URL (default: SQLite)")
    parser.add_argument("--redis", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/15"))
    args = parser.parse_args()
    results = [await one(n, args.seconds, args.cores, args.database, args.redis) for n in args.workers]
    print(json.dumps(results, indent=2))
    print()
    print("| workers | req/s | CPU µs/request | chunks/s | CPU µs/chunk | calls made | log rows | tracebacks | `database is locked` |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(f"| {r['workers']} | {r['rps']} | {r['cpu_us_per_request']} | {r['chunks_per_s']} | {r['cpu_us_per_chunk']} | {r['calls_made']} | {r['log_rows']} | {r['tracebacks']} | {r['database_locked']} |")


if __name__ == "__main__":
    asyncio.run(main())
