"""Call logs at scale: 2,000,000 realistic rows, then the dashboard, log pages and CSV export.

    .venv/bin/python bench/stats_bench.py                  # SQLite and PostgreSQL, 2,000,000 rows
    .venv/bin/python bench/stats_bench.py --rows 200000    # smaller
    .venv/bin/python bench/stats_bench.py --only sqlite

Rows are written through the app's own call-log writer (so the daily rollups are maintained as in
production), spread over 60 days. Then the app is started in process and each endpoint is called
over HTTP on a server process of its own (median of repeated calls after a warm-up): every `/api/admin/stats/*` endpoint, log pages
with each filter (and a page deep in the list via its cursor), the totals, and a CSV export of a
large filtered set (rows/s, and the server's RSS before and at its peak during the export).
Targets (issue): dashboard and filtered page < 100 ms; CSV ≥ 50,000 rows/s with flat memory.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "backend"))

import httpx  # noqa: E402
from pydantic import SecretStr  # noqa: E402
from sqlalchemy import text  # noqa: E402
from sqlalchemy.ext.asyncio import create_async_engine  # noqa: E402

from app.core import migrate  # noqa: E402
from app.core.config import (  # noqa: E402
    AdminSettings,
    AuthSettings,
    CallLogSettings,
    DatabaseSettings,
    RedisSettings,
    SecuritySettings,
    ServerSettings,
    Settings,
)
from app.core.db import create_engine  # noqa: E402
from app.devtools import log_rows  # noqa: E402
from app.logs.query import encode_cursor  # noqa: E402
from app.logs.writer import CallLogWriter  # noqa: E402
from app.stats import rollup  # noqa: E402

PG_URL = os.environ.get("BENCH_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
ADMIN_PASSWORD = "bench-admin-password-1"
DAYS = 60
WRITE_BATCH = 5000
REPEAT = 15


def settings_for(data_dir: Path, url: str, schema: str | None) -> Settings:
    return Settings(
        server=ServerSettings(_env_file=None, data_dir=data_dir),  # type: ignore[call-arg]
        database=DatabaseSettings(_env_file=None, url=SecretStr(url), pg_schema=schema),  # type: ignore[call-arg]
        redis=RedisSettings(_env_file=None),  # type: ignore[call-arg]
        security=SecuritySettings(  # type: ignore[call-arg]
            _env_file=None,
            secret_key=SecretStr("bench-signing-key-0123456789abcdef0123456789"),
            encryption_keys=SecretStr("Zk1xQmR6b1hYc0FvQ0pHNnU3dUF0b2xWd2JvTnBkNkE="),
        ),
        auth=AuthSettings(_env_file=None, argon2_time_cost=1, argon2_memory_kib=8192, argon2_parallelism=1),  # type: ignore[call-arg]
        call_log=CallLogSettings(_env_file=None),  # type: ignore[call-arg]
        admin=AdminSettings(_env_file=None, username="admin", password=SecretStr(ADMIN_PASSWORD)),  # type: ignore[call-arg]
    )


async def fill(settings: Settings, count: int) -> tuple[float, list[dict[str, Any]]]:
    engine = create_engine(settings)
    await migrate.upgrade(engine)
    await rollup.ensure_timezone(engine, settings.server.timezone)  # as a first start does
    writer = CallLogWriter(engine, settings.call_log, settings.server.timezone)
    now = datetime.now(UTC)
    started = time.perf_counter()
    batch: list[dict[str, Any]] = []
    probes: list[dict[str, Any]] = []
    for index, row in enumerate(log_rows.rows(count, start=now - timedelta(days=DAYS), end=now, users=2000, channels=12)):
        batch.append(row)
        if index % (count // 5) == 0:
            probes.append(row)
        if len(batch) == WRITE_BATCH:
            await writer._insert(batch)
            batch = []
    if batch:
        await writer._insert(batch)
    elapsed = time.perf_counter() - started
    async with engine.begin() as conn:
        await conn.execute(text("ANALYZE"))
    await engine.dispose()
    return count / elapsed, probes


async def timed(client: httpx.AsyncClient, url: str, headers: dict[str, str], params: dict[str, Any] | None = None) -> float:
    for _ in range(2):
        response = await client.get(url, params=params, headers=headers)
        assert response.status_code == 200, (url, response.status_code, response.text[:300])
    samples = []
    for _ in range(REPEAT):
        started = time.perf_counter()
        response = await client.get(url, params=params, headers=headers)
        samples.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200
    return statistics.median(samples)


def serve(settings: Settings, url: str, schema: str | None) -> tuple[subprocess.Popen[bytes], str]:
    """The app as its own process (so its memory is measured alone), on a free port."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_", "ADMIN_"))},
        "PYTHONPATH": str(ROOT / "backend"),
        "PORT": str(port),
        "DATA_DIR": str(settings.server.data_dir),
        "DATABASE_URL": url,
        "SECRET_KEY": settings.security.secret_key.get_secret_value(),  # type: ignore[union-attr]
        "ENCRYPTION_KEYS": settings.security.encryption_keys.get_secret_value(),  # type: ignore[union-attr]
        "ADMIN_USERNAME": "admin",
        "ADMIN_PASSWORD": ADMIN_PASSWORD,
        "AUTH_ARGON2_TIME_COST": "1",
        "AUTH_ARGON2_MEMORY_KIB": "8192",
        "AUTH_ARGON2_PARALLELISM": "1",
    }
    if schema:
        env["DATABASE_PG_SCHEMA"] = schema
    log = open(settings.server.data_dir / "server.log", "wb")  # noqa: SIM115 (lives with the process)
    proc = subprocess.Popen([sys.executable, "-m", "app", "serve"], env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or proc.poll() is not None:
            raise RuntimeError("the server did not start: see " + str(settings.server.data_dir / "server.log"))
        time.sleep(0.2)


def process_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def measure(settings: Settings, probes: list[dict[str, Any]], url: str, schema: str | None) -> dict[str, Any]:
    proc, base = serve(settings, url, schema)
    try:
        return await _measure(base, proc.pid, probes)
    finally:
        proc.terminate()
        proc.wait(60)


async def _measure(base: str, pid: int, probes: list[dict[str, Any]]) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=base, timeout=600) as client:
        login = await client.post("/api/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD})
        admin = {"Authorization": f"Bearer {login.json()['access_token']}"}
        results: dict[str, Any] = {"dashboard_ms": {}, "log_page_ms": {}, "totals_ms": {}}
        stats = {
            "overview": ("/api/admin/stats/overview", None),
            "trend 7d": ("/api/admin/stats/trend", {"days": 7}),
            "trend 30d": ("/api/admin/stats/trend", {"days": 30}),
            "models 30d": ("/api/admin/stats/models", {"days": 30}),
            "active users": ("/api/admin/stats/active-users", None),
            "top users 30d": ("/api/admin/stats/top-users", {"days": 30}),
            "top keys 30d": ("/api/admin/stats/top-keys", {"days": 30}),
            "channels 7d": ("/api/admin/stats/channels", {"days": 7}),
            "blocked 7d": ("/api/admin/stats/blocked", {"days": 7}),
        }
        for name, (url, params) in stats.items():
            results["dashboard_ms"][name] = await timed(client, url, admin, params)
        probe = probes[len(probes) // 2]
        week_ago = (datetime.now(UTC) - timedelta(days=7)).isoformat()
        filters = {
            "newest": {},
            "deep (cursor at the middle)": {"cursor": encode_cursor(probe["created_at"], 10**12)},
            "user": {"user_id": probe["user_id"]},
            "model": {"model": "glm-4"},
            "channel": {"channel_id": 5},
            "api key": {"api_key_id": probes[0]["api_key_id"] or 3},
            "errors (timeout)": {"end_reason": "timeout"},
            "failed": {"success": False},
            "client ip": {"client_ip": probe["client_ip"]},
            "request id": {"request_id": probe["request_id"]},
            "last 7 days + user": {"since": week_ago, "user_id": probe["user_id"]},
            "chat, not streamed": {"source": "chat", "stream": False},
        }
        for name, params in filters.items():
            results["log_page_ms"][name] = await timed(client, "/api/admin/logs", admin, {**params, "limit": 50})
        for name in ("newest", "user", "last 7 days + user"):
            results["totals_ms"][name] = await timed(client, "/api/admin/logs/totals", admin, filters[name])

        since = (datetime.now(UTC) - timedelta(days=15)).isoformat()
        peak = [process_rss_mb(pid)]
        before = peak[0]
        done = threading.Event()

        def sample_rss() -> None:
            while not done.is_set():
                peak[0] = max(peak[0], process_rss_mb(pid))
                time.sleep(0.05)

        sampler = threading.Thread(target=sample_rss)
        sampler.start()
        started = time.perf_counter()
        lines = 0
        size = 0
        async with client.stream("GET", "/api/admin/logs/export", params={"since": since}, headers=admin) as response:
            async for chunk in response.aiter_bytes():
                lines += chunk.count(b"\n")
                size += len(chunk)
        elapsed = time.perf_counter() - started
        done.set()
        sampler.join()
        rows = lines - 2  # header and totals
        results["csv"] = {
            "rows": rows,
            "seconds": round(elapsed, 2),
            "rows_per_s": round(rows / elapsed),
            "mb": round(size / 1e6, 1),
            "rss_before_mb": round(before, 1),
            "rss_peak_mb": round(peak[0], 1),
        }
    return results


async def bench_backend(name: str, rows: int) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix=f"acgw-stats-{name}-"))
    schema = None
    if name == "sqlite":
        url = f"sqlite+aiosqlite:///{workdir / 'app.db'}"
    else:
        schema = f"bench_{uuid.uuid4().hex[:10]}"
        engine = create_async_engine(PG_URL, isolation_level="AUTOCOMMIT")
        async with engine.connect() as conn:
            await conn.execute(text(f"CREATE SCHEMA {schema}"))
        await engine.dispose()
        url = PG_URL
    settings = settings_for(workdir, url, schema)
    try:
        print(f"[{name}] writing {rows:,} rows through the call-log writer…", flush=True)
        write_rate, probes = await fill(settings, rows)
        print(f"[{name}] {write_rate:,.0f} rows/s written; measuring…", flush=True)
        result = await measure(settings, probes, url, schema)
        result["write_rows_per_s"] = round(write_rate)
        if name == "sqlite":
            result["db_mb"] = round((workdir / "app.db").stat().st_size / 1e6)
        return result
    finally:
        if schema:
            engine = create_async_engine(PG_URL, isolation_level="AUTOCOMMIT")
            async with engine.connect() as conn:
                await conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
            await engine.dispose()


def markdown(results: dict[str, Any], rows: int, command: str) -> str:
    backends = list(results)
    lines = [
        f"Command: `{command}` — {rows:,} rows over {DAYS} days; "
        f"Python {platform.python_version()}, {platform.machine()}",
        "",
        "| measurement | " + " | ".join(backends) + " | target |",
        "|---|" + "---|" * len(backends) + "---|",
    ]
    for section, target in (("dashboard_ms", "< 100 ms"), ("log_page_ms", "< 100 ms"), ("totals_ms", "—")):
        label = {"dashboard_ms": "dashboard", "log_page_ms": "log page", "totals_ms": "totals"}[section]
        for key in results[backends[0]][section]:
            cells = " | ".join(f"{results[b][section][key]:.1f} ms" for b in backends)
            lines.append(f"| {label}: {key} | {cells} | {target} |")
    csv_cells = " | ".join(
        f"{results[b]['csv']['rows_per_s']:,} rows/s ({results[b]['csv']['rows']:,} rows, {results[b]['csv']['mb']} MB)" for b in backends
    )
    lines.append(f"| CSV export | {csv_cells} | ≥ 50,000 rows/s |")
    rss_cells = " | ".join(f"{results[b]['csv']['rss_before_mb']} → {results[b]['csv']['rss_peak_mb']} MB" for b in backends)
    lines.append(f"| RSS during the export (before → peak) | {rss_cells} | flat |")
    write_cells = " | ".join(f"{results[b]['write_rows_per_s']:,} rows/s" for b in backends)
    lines.append(f"| writing (rows + rollups, 5,000 per batch) | {write_cells} | — |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--only", choices=("sqlite", "postgresql"))
    args = parser.parse_args()
    backends = [args.only] if args.only else ["sqlite", "postgresql"]
    results = {name: asyncio.run(bench_backend(name, args.rows)) for name in backends}
    command = "make bench-stats" + (f" ROWS={args.rows}" if args.rows != 2_000_000 else "")
    report = markdown(results, args.rows, command)
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    (out / f"stats-{stamp}.json").write_text(json.dumps(results, indent=2))
    (out / f"stats-{stamp}.md").write_text(report)
    print(report)


if __name__ == "__main__":
    main()
