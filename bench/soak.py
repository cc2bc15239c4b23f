"""Soak: a long run of mixed traffic with upstream faults injected at random, on loopback.

    .venv/bin/python bench/soak.py                     # 30 minutes (make soak)
    .venv/bin/python bench/soak.py --minutes 3         # a short run
    .venv/bin/python bench/soak.py --database postgresql+asyncpg://postgres@127.0.0.1:5432/test

Starts the mock upstream and one gateway process (SQLite in a temporary directory unless
`--database` is given; PostgreSQL runs in a schema of its own that is dropped afterwards). Two
channels serve `mock-gpt`: `steady` answers normally; `flaky` switches every few seconds to a fault
picked at random (errors, 429 with Retry-After, resets mid-stream, stalls before the first byte and
mid-stream, in-band errors, malformed SSE, an error that echoes the channel key, slow starts).

Clients (`--concurrency` of them, without pause) send a mix: streams read to the end, non-stream
calls, streams left after a few chunks, calls left before the answer, bad input, web-chat
messages, and admin reads (dashboard, log pages).

Every `--sample` seconds the gateway's RSS, open file descriptors, threads and asyncio tasks
(`acgw_asyncio_tasks` from /metrics) are recorded. At the end, once idle, it checks: call-log rows
= `/v1` calls sent (and chat rows = chat messages), file descriptors and tasks back to where they
were at the start, and the channel key absent from the server's log. Writes
bench/results/soak-<time>.json and prints a Markdown summary. Exit status 1 when a check fails.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
BACKEND = ROOT / "backend"
PYTHON = sys.executable
ADMIN_PASSWORD = f"soak-{uuid.uuid4().hex}"
CHANNEL_KEY = f"sk-soak-sentinel-{uuid.uuid4().hex}"
SETTLE_SECONDS = 35  # longer than the keep-alive of idle upstream connections (30 s)
PROMPT = [{"role": "user", "content": "Say hello to the soak test."}]
FAULTS: list[dict[str, Any]] = [
    {},
    {},
    {"status": 503},
    {"status": 500, "echo_key": 1},
    {"status": 429, "retry_after": 2},
    {"drop_after": 3},
    {"stall_before": 3},  # the channel's first-byte timeout is 1 s
    {"stall_after": 2, "stall": 3},  # idle timeout 1 s
    {"inband_error_after": 2},
    {"malformed": "invalid_json"},
    {"malformed": "crlf"},
    {"malformed": "split"},
    {"usage": "every"},
    {"usage": "never"},
    {"latency": 0.5},
]
# What a client does, with its weight.
ACTIONS = {
    "stream": 50,
    "complete": 20,
    "stream_left": 10,
    "complete_left": 5,
    "bad_input": 6,
    "chat": 5,
    "admin_read": 4,
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def proc_status(pid: int) -> dict[str, float]:
    values: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(("VmRSS:", "Threads:")):
            name, value = line.split(":", 1)
            values[name] = float(value.split()[0])
    return {
        "rss_mb": round(values.get("VmRSS", 0) / 1024, 1),
        "threads": values.get("Threads", 0),
        "fds": float(len(os.listdir(f"/proc/{pid}/fd"))),
    }


def _tcp_peers(pid: int) -> dict[str, tuple[int, int]]:
    """socket inode → (local port, remote port), from the process's view of /proc/net/tcp*."""
    peers: dict[str, tuple[int, int]] = {}
    for name in ("tcp", "tcp6"):
        path = Path(f"/proc/{pid}/net/{name}")
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            local, remote, inode = fields[1], fields[2], fields[9]
            peers[inode] = (int(local.rsplit(":", 1)[1], 16), int(remote.rsplit(":", 1)[1], 16))
    return peers


def fd_kinds(pid: int, ports: dict[int, str]) -> Counter[str]:
    """The process's open descriptors by kind: database files, connections by peer, other."""
    peers = _tcp_peers(pid)
    kinds: Counter[str] = Counter()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            local, remote = peers.get(target[8:-1], (0, 0))
            kinds[ports.get(remote) or ports.get(local) or "socket (other)"] += 1
        elif "app.db" in target:
            kinds["database file"] += 1
        else:
            kinds[target if target.startswith(("/dev", "pipe:", "anon_inode:")) else "file"] += 1
    return kinds


# Descriptors that belong to connection pools: they may be more after the run than before it (a
# pool keeps what it opened, up to its size), which is not a leak.
POOLED = ("database file", "connection to the mock upstream", "connection to PostgreSQL", "connection to Redis")


@dataclass
class Tally:
    outcomes: Counter[str] = field(default_factory=Counter)
    v1_calls: int = 0
    chat_messages: int = 0
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # the first unexpected answers, for the report

    def add(self, kind: str) -> None:
        self.outcomes[kind] += 1


@dataclass
class Soak:
    base: str
    mock: str
    key: str
    admin: dict[str, str]
    tally: Tally = field(default_factory=Tally)
    rng: random.Random = field(default_factory=lambda: random.Random(7))

    @property
    def v1_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    async def stream(self, http: aiohttp.ClientSession, leave_after: int | None) -> None:
        body = {"model": "mock-gpt", "messages": PROMPT, "stream": True}
        self.tally.v1_calls += 1
        started = time.monotonic()
        async with http.post("/v1/chat/completions", json=body, headers=self.v1_headers) as r:
            if r.status != 200:
                self.tally.add(f"stream_http_{r.status}")
                await r.read()
                return
            chunks = 0
            error = False
            async for line in r.content:
                if line.startswith(b'data: {"error"'):
                    error = True
                if line.startswith(b"data: {"):
                    chunks += 1
                    if leave_after is not None and chunks >= leave_after:
                        self.tally.add("stream_left")
                        return  # leaving the block closes the connection mid-stream
            self.tally.add("stream_error_frame" if error else "stream_ok")
            self.tally.latencies.append(time.monotonic() - started)

    async def complete(self, http: aiohttp.ClientSession, leave: bool) -> None:
        body = {"model": "mock-gpt", "messages": PROMPT}
        self.tally.v1_calls += 1
        # Leaving: once the request is sent (a read timeout starts after it), so it is a call.
        timeout = aiohttp.ClientTimeout(total=60, sock_read=0.05 if leave else None)
        try:
            async with http.post(
                "/v1/chat/completions", json=body, headers=self.v1_headers, timeout=timeout
            ) as r:
                await r.read()
                self.tally.add("complete_ok" if r.status == 200 else f"complete_http_{r.status}")
        except TimeoutError:
            if not leave:
                raise
            self.tally.add("complete_left")

    async def bad_input(self, http: aiohttp.ClientSession) -> None:
        self.tally.v1_calls += 1
        choice = self.rng.randrange(4)
        headers = {**self.v1_headers, "Content-Type": "application/json"}
        payload: bytes = [
            b'{"model": "mock-gpt", "messages": [',  # truncated JSON
            b'{"model": "no-such-model", "messages": [{"role": "user", "content": "x"}]}',
            b'{"model": "mock-gpt", "messages": "not a list"}',
            b'{"model": "mock-gpt", "messages": [{"role": "user", "content": "x"}], '
            b'"api_base": "http://169.254.169.254/"}',
        ][choice]
        async with http.post("/v1/chat/completions", data=payload, headers=headers) as r:
            await r.read()
            self.tally.add(f"bad_input_{r.status}")

    async def chat(self, http: aiohttp.ClientSession, conversation: list[int]) -> None:
        if not conversation or self.rng.random() < 0.1:
            async with http.post(
                "/api/conversations",
                json={"model": "mock-gpt", "title": "soak"},
                headers=self.admin,
            ) as r:
                created = await r.json()
                if r.status != 201:
                    self.tally.add(f"chat_create_http_{r.status}")
                    self.tally.errors.append(f"create conversation: {r.status} {created}"[:300])
                    return
                conversation[:] = [created["id"]]
        self.tally.chat_messages += 1
        async with http.post(
            f"/api/conversations/{conversation[0]}/messages",
            json={"content": "hello"},
            headers=self.admin,
        ) as r:
            text = await r.text()
            if r.status != 200:
                self.tally.add(f"chat_http_{r.status}")
            else:
                self.tally.add("chat_done" if "event: done" in text else "chat_other")

    async def admin_read(self, http: aiohttp.ClientSession) -> None:
        path = self.rng.choice(
            ["/api/admin/stats/overview", "/api/admin/logs?limit=50", "/api/admin/logs/totals"]
        )
        async with http.get(path, headers=self.admin) as r:
            await r.read()
            self.tally.add("admin_ok" if r.status == 200 else f"admin_http_{r.status}")

    async def client(self, http: aiohttp.ClientSession, until: float) -> None:
        names, weights = list(ACTIONS), list(ACTIONS.values())
        conversation: list[int] = []
        while time.monotonic() < until:
            action = self.rng.choices(names, weights)[0]
            try:
                if action == "stream":
                    await self.stream(http, None)
                elif action == "stream_left":
                    await self.stream(http, self.rng.randint(1, 4))
                elif action in ("complete", "complete_left"):
                    await self.complete(http, action == "complete_left")
                elif action == "bad_input":
                    await self.bad_input(http)
                elif action == "chat":
                    await self.chat(http, conversation)
                else:
                    await self.admin_read(http)
            except (aiohttp.ClientError, TimeoutError) as exc:
                self.tally.add(f"{action}_transport_{type(exc).__name__}")

    async def inject_faults(self, http: aiohttp.ClientSession, until: float) -> Counter[str]:
        used: Counter[str] = Counter()
        while time.monotonic() < until:
            fault = self.rng.choice(FAULTS)
            used[json.dumps(fault, sort_keys=True)] += 1
            async with http.put(f"{self.mock}/_mock/profiles/flaky", json=fault):
                pass
            async with http.delete(f"{self.mock}/_mock/requests"):  # keeps the mock's memory small
                pass
            await asyncio.sleep(self.rng.uniform(2, 6))
        async with http.put(f"{self.mock}/_mock/profiles/flaky", json={}):
            pass
        return used


async def metrics_values(http: aiohttp.ClientSession, base: str) -> dict[str, float]:
    async with http.get(f"{base}/metrics") as r:
        text = await r.text()
    wanted = ("acgw_asyncio_tasks", "acgw_calls_in_flight", "acgw_call_log_queue")
    values: dict[str, float] = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name in wanted:
            values[name] = float(value)
    return values


async def sample(http: aiohttp.ClientSession, base: str, pid: int, started: float) -> dict[str, Any]:
    metrics = await metrics_values(http, base)
    return {
        "t": round(time.monotonic() - started, 1),
        **proc_status(pid),
        "tasks": metrics.get("acgw_asyncio_tasks"),
        "in_flight": metrics.get("acgw_calls_in_flight"),
    }


async def wait_idle(http: aiohttp.ClientSession, base: str, timeout: float = 60) -> None:
    """No call running, the call log written, and idle pooled connections closed (keep-alive)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        values = await metrics_values(http, base)
        if not values.get("acgw_calls_in_flight") and not values.get("acgw_call_log_queue"):
            await asyncio.sleep(SETTLE_SECONDS)
            return
        await asyncio.sleep(0.5)
    raise RuntimeError("the gateway did not become idle")


async def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"{url}: the process exited with {proc.returncode}")
            with contextlib.suppress(aiohttp.ClientError):
                async with http.get(url) as r:
                    if r.status == 200:
                        return
            await asyncio.sleep(0.3)
    raise RuntimeError(f"{url} did not come up")


async def configure(base: str, mock: str) -> tuple[str, dict[str, str]]:
    async with aiohttp.ClientSession(base_url=base) as http:
        async with http.post(
            "/api/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD}
        ) as r:
            admin = {"Authorization": f"Bearer {(await r.json())['access_token']}"}
        for name in ("steady", "flaky"):
            channel = {
                "name": name,
                "base_url": f"{mock}/{name}/v1",
                "api_key": CHANNEL_KEY,
                "models": ["mock-gpt"],
                "first_byte_timeout": 1,
                "idle_timeout": 1,
                "total_timeout": 20,
            }
            async with http.post("/api/admin/channels", json=channel, headers=admin) as r:
                assert r.status == 201, await r.text()
        async with http.post("/api/keys", json={"name": "soak"}, headers=admin) as r:
            return str((await r.json())["key"]), admin


async def log_totals(http: aiohttp.ClientSession, soak: Soak, source: str) -> int:
    async with http.get(
        f"{soak.base}/api/admin/logs/totals", params={"source": source}, headers=soak.admin
    ) as r:
        body = await r.json()
        if r.status != 200:
            raise RuntimeError(f"log totals: HTTP {r.status} {body}")
        return int(body["requests"])


async def run(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="acgw-soak-"))
    mock_port, port = free_port(), free_port()
    mock = f"http://127.0.0.1:{mock_port}"
    base = f"http://127.0.0.1:{port}"
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DATABASE_", "REDIS_", "ADMIN_", "SECRET_KEY", "ENCRYPTION_KEYS"))
    }
    schema = None
    env.update(
        PYTHONPATH=str(BACKEND),
        DATA_DIR=str(workdir / "data"),
        HOST="127.0.0.1",
        PORT=str(port),
        ADMIN_USERNAME="admin",
        ADMIN_PASSWORD=ADMIN_PASSWORD,
        DEFAULT_USER_RPM="0",
        DEFAULT_USER_CONCURRENT_STREAMS="0",
        IP_RPM="0",
        PYTHONUNBUFFERED="1",
        # The admin's sign-in must outlive the run (its chat and admin calls use it).
        AUTH_ACCESS_TOKEN_MINUTES=str(min(24 * 60, int(args.minutes) + 30)),
    )
    if args.sqlite_busy_timeout_ms is not None:  # shorter: lock waits surface as 503s sooner
        env["DATABASE_SQLITE_BUSY_TIMEOUT_MS"] = str(args.sqlite_busy_timeout_ms)
    if args.database:
        env["DATABASE_URL"] = args.database
        if args.database.startswith("postgresql"):
            schema = f"soak_{uuid.uuid4().hex[:8]}"
            env["DATABASE_PG_SCHEMA"] = schema
    mock_log = (workdir / "mock.log").open("wb")
    gateway_log_path = workdir / "gateway.log"
    gateway_log = gateway_log_path.open("wb")
    procs = [
        subprocess.Popen(
            [PYTHON, "-m", "app.devtools.mock_upstream", "--port", str(mock_port)],
            cwd=BACKEND, env=env, stdout=mock_log, stderr=subprocess.STDOUT,
        ),
        subprocess.Popen(
            [PYTHON, "-m", "app", "serve"],
            cwd=BACKEND, env=env, stdout=gateway_log, stderr=subprocess.STDOUT,
        ),
    ]  # fmt: skip
    try:
        await wait_ready(f"{mock}/_mock/stats", procs[0])
        await wait_ready(f"{base}/readyz", procs[1])
        key, admin = await configure(base, mock)
        soak = Soak(base=base, mock=mock, key=key, admin=admin)
        pid = procs[1].pid
        connector = aiohttp.TCPConnector(limit=0)
        timeout = aiohttp.ClientTimeout(total=120)
        async with aiohttp.ClientSession(base, connector=connector, timeout=timeout) as http:
            # A short warm-up, so the first sample is of a server that has served every kind.
            warm_until = time.monotonic() + 20
            await asyncio.gather(*(soak.client(http, warm_until) for _ in range(args.concurrency)))
            await wait_idle(http, base)
            started = time.monotonic()
            baseline = await sample(http, base, pid, started)
            ports = {
                mock_port: "connection to the mock upstream",
                port: "client connection",
                5432: "connection to PostgreSQL",
                6379: "connection to Redis",
            }
            fds_start = fd_kinds(pid, ports)
            until = started + args.minutes * 60
            samples: list[dict[str, Any]] = [baseline]

            async def sampler() -> None:
                while time.monotonic() < until:
                    await asyncio.sleep(args.sample)
                    samples.append(await sample(http, base, pid, started))
                    print(json.dumps(samples[-1]), flush=True)

            results = await asyncio.gather(
                soak.inject_faults(http, until),
                sampler(),
                *(soak.client(http, until) for _ in range(args.concurrency)),
            )
            faults: Counter[str] = results[0]
            await wait_idle(http, base)
            end = await sample(http, base, pid, started)
            fds_end = fd_kinds(pid, ports)
            api_rows = await log_totals(http, soak, "api")
            chat_rows = await log_totals(http, soak, "chat")
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        mock_log.close()
        gateway_log.close()
    server_log = gateway_log_path.read_text(errors="replace")
    if args.keep_log:
        shutil.copyfile(gateway_log_path, args.keep_log)
    shutil.rmtree(workdir, ignore_errors=True)
    if schema:
        await drop_schema(args.database, schema)
    fds = (fds_start, fds_end)
    return report(args, soak, samples, baseline, end, api_rows, chat_rows, faults, server_log, fds)


async def drop_schema(url: str, schema: str) -> None:
    sys.path.insert(0, str(BACKEND))
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(url)
    async with engine.begin() as conn:
        await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    await engine.dispose()


def report(
    args: argparse.Namespace,
    soak: Soak,
    samples: list[dict[str, Any]],
    baseline: dict[str, Any],
    end: dict[str, Any],
    api_rows: int,
    chat_rows: int,
    faults: Counter[str],
    server_log: str,
    fds: tuple[Counter[str], Counter[str]],
) -> dict[str, Any]:
    # Warm-up traffic is counted too: the warm-up ran against the same server and tally.
    # Flat: after the first third (caches and the allocator's arenas filling), RSS stops growing.
    third = max(1, len(samples) // 3)
    early = statistics.median(s["rss_mb"] for s in samples[third : 2 * third] or samples)
    late = statistics.median(s["rss_mb"] for s in samples[-third:])
    latencies = sorted(soak.tally.latencies)
    fds_start, fds_end = fds
    fd_change = {
        kind: fds_end[kind] - fds_start[kind]
        for kind in sorted(set(fds_start) | set(fds_end))
        if fds_end[kind] != fds_start[kind]
    }
    grown_unpooled = {k: n for k, n in fd_change.items() if n > 0 and k not in POOLED}
    checks = {
        "log rows = /v1 calls": api_rows == soak.tally.v1_calls,
        "chat rows = chat messages": chat_rows == soak.tally.chat_messages,
        "fds back to the start (pooled connections aside)": not grown_unpooled,
        "tasks back to the start": (end["tasks"] or 0) <= (baseline["tasks"] or 0),
        "RSS flat (last third within 10% of the middle third)": late <= early * 1.10,
        "channel key not in the server log": CHANNEL_KEY not in server_log,
        "no unhandled errors logged": "Traceback" not in server_log,
        "no transport errors at clients": not any(
            "_transport_" in kind for kind in soak.tally.outcomes
        ),
    }
    return {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "database": "postgresql" if args.database and "postgres" in args.database else "sqlite",
        "minutes": args.minutes,
        "concurrency": args.concurrency,
        "v1_calls": soak.tally.v1_calls,
        "chat_messages": soak.tally.chat_messages,
        "api_log_rows": api_rows,
        "chat_log_rows": chat_rows,
        "outcomes": dict(sorted(soak.tally.outcomes.items())),
        "faults_injected": dict(faults),
        "stream_seconds_p50": latencies[len(latencies) // 2] if latencies else None,
        "rss_mb_middle_third": early,
        "rss_mb_last_third": late,
        "rss_mb_max": max(s["rss_mb"] for s in samples),
        "baseline": baseline,
        "end_idle": end,
        "fds_idle_start": dict(fds_start),
        "fds_idle_end": dict(fds_end),
        "fd_change": fd_change,
        "unexpected_answers": soak.tally.errors[:20],
        "error_log_lines": sum(" ERROR " in line for line in server_log.splitlines()),
        "checks": checks,
        "samples": samples,
    }


def markdown(result: dict[str, Any]) -> str:
    lines = [
        f"Soak, {result['when']} — {result['machine']}, {result['database']}, "
        f"{result['minutes']} min, {result['concurrency']} clients",
        "",
        "| | value |",
        "|---|---|",
        f"| /v1 calls sent / call-log rows | {result['v1_calls']} / {result['api_log_rows']} |",
        f"| chat messages / chat rows | {result['chat_messages']} / {result['chat_log_rows']} |",
        f"| RSS MB: after warm-up / middle third / last third / max | {result['baseline']['rss_mb']} / "
        f"{result['rss_mb_middle_third']} / {result['rss_mb_last_third']} / {result['rss_mb_max']} |",
        f"| fds idle: start / end | {result['baseline']['fds']:.0f} / {result['end_idle']['fds']:.0f} |",
        "| fds idle, change by kind | "
        + (", ".join(f"{k} {n:+d}" for k, n in result["fd_change"].items()) or "none")
        + " |",
        f"| asyncio tasks idle: start / end | {result['baseline']['tasks']:.0f} / "
        f"{result['end_idle']['tasks']:.0f} |",
        f"| threads idle: start / end | {result['baseline']['threads']:.0f} / "
        f"{result['end_idle']['threads']:.0f} |",
        f"| ERROR lines in the server log | {result['error_log_lines']} |",
        "",
        "Outcomes: " + ", ".join(f"{k} {v}" for k, v in result["outcomes"].items()),
        "",
        "Checks: " + ", ".join(f"{k}: {'yes' if ok else 'NO'}" for k, ok in result["checks"].items()),
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--sample", type=float, default=15, help="seconds between samples")
    parser.add_argument("--sqlite-busy-timeout-ms", type=int, help="the server's SQLite busy timeout")
    parser.add_argument("--keep-log", type=Path, help="copy the gateway's log here at the end")
    parser.add_argument("--database", help="DATABASE_URL (default: SQLite in a temporary directory)")
    args = parser.parse_args()
    result = asyncio.run(run(args))
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"soak-{datetime.now(UTC):%Y%m%dT%H%M%S}.json"
    path.write_text(json.dumps(result, indent=2))
    print(markdown(result))
    print(f"\n(wrote {path.relative_to(ROOT)})")
    sys.exit(0 if all(result["checks"].values()) else 1)


if __name__ == "__main__":
    main()
