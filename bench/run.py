"""Gateway benchmark: direct to the mock upstream vs. a minimal proxy vs. the gateway, in one run.

    .venv/bin/python bench/run.py            # full run (~4 minutes), writes bench/results/*.json|md
    .venv/bin/python bench/run.py --quick    # shorter phases, for a smoke check

Layout on a 2-core machine: the system under test (minimal proxy or gateway) is pinned to core 0;
the mock upstream and this load generator share core 1. Each target is measured in turn, never
at the same time. Only ratios from one run are meaningful; absolute numbers depend on the machine.

Scenarios:
  throughput   non-stream requests/s at concurrency 32, mock latency 0 ms and 50 ms
  latency      p50/p99 at concurrency 1 (non-stream), and the gateway's added latency over direct
  streaming    200-chunk streams at concurrency 32: time to first chunk, relayed chunks/s
  memory       RSS of the proxy and the gateway holding 1,000 concurrent slow streams
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
CORE_SUT, CORE_LOAD = 0, 1
MOCK_PORT, PROXY_PORT, GATEWAY_PORT, UVICORN_PROXY_PORT = 9611, 9612, 9613, 9614
ADMIN_PASSWORD = "bench-admin-password"
PROFILES = {
    "fast": {},
    "lat50": {"latency": "0.05"},
    "stream200": {"chunks": "200"},
    "slow": {"chunks": "40", "interval": "0.25"},
}
PROMPT = [{"role": "user", "content": "Say hello to the benchmark"}]


@dataclass
class Target:
    name: str
    url: str  # chat completions URL for a profile: "{profile}" is filled in
    headers: dict[str, str]
    model: str  # "{profile}" is filled in
    pid: int | None = None
    kind: str = "chat"  # chat | responses | messages: the format the client speaks

    def endpoint(self, profile: str) -> str:
        return self.url.format(profile=profile)

    def body(self, profile: str, stream: bool) -> bytes:
        model = self.model.format(profile=profile)
        payload: dict[str, Any] = {"model": model, "messages": PROMPT, "stream": stream}
        if self.kind == "responses":
            payload = {"model": model, "input": PROMPT[0]["content"], "stream": stream}
        elif self.kind == "messages":
            payload["max_tokens"] = 1024
        return json.dumps(payload).encode()


@dataclass
class Processes:
    items: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def spawn(self, args: list[str], core: int, log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        handle = log.open("wb")
        proc = subprocess.Popen(
            ["taskset", "-c", str(core), *args], stdout=handle, stderr=subprocess.STDOUT, env=env, cwd=ROOT
        )
        self.items.append(proc)
        return proc

    def stop(self) -> None:
        for proc in self.items:
            proc.terminate()
        for proc in self.items:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


async def wait_ready(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            try:
                async with session.get(url) as response:
                    if response.status < 500:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU time of a process (and its threads) so far."""
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# ── load ─────────────────────────────────────────────────────────────────────────────────────
async def throughput(session: aiohttp.ClientSession, target: Target, profile: str, concurrency: int, seconds: float) -> dict[str, float]:
    url, body = target.endpoint(profile), target.body(profile, stream=False)
    done = errors = 0
    stop_at = 0.0

    async def worker() -> None:
        nonlocal done, errors
        while time.monotonic() < stop_at:
            async with session.post(url, data=body, headers=target.headers) as response:
                await response.read()
                if response.status == 200:
                    done += 1
                else:
                    errors += 1

    stop_at = time.monotonic() + 1.0  # warm-up
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    done = errors = 0
    cpu_before = cpu_seconds(target.pid)
    started = time.monotonic()
    stop_at = started + seconds
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.monotonic() - started
    cpu_us = (cpu_seconds(target.pid) - cpu_before) / max(done, 1) * 1e6
    return {"rps": done / elapsed, "errors": errors, "cpu_us_per_request": cpu_us}


async def latency(session: aiohttp.ClientSession, target: Target, profile: str, count: int) -> dict[str, float]:
    url, body = target.endpoint(profile), target.body(profile, stream=False)
    samples: list[float] = []
    for index in range(count + 50):
        started = time.perf_counter()
        async with session.post(url, data=body, headers=target.headers) as response:
            await response.read()
            assert response.status == 200, await response.text()
        if index >= 50:  # the first 50 warm up connections and caches
            samples.append((time.perf_counter() - started) * 1000)
    return {"p50_ms": statistics.median(samples), "p99_ms": percentile(samples, 0.99)}


async def one_stream(session: aiohttp.ClientSession, url: str, body: bytes, headers: dict[str, str]) -> tuple[float, int, bool]:
    started = time.perf_counter()
    ttft = 0.0
    chunks = 0
    finished = False
    async with session.post(url, data=body, headers=headers) as response:
        if response.status != 200:
            await response.read()
            return 0.0, 0, False
        async for data in response.content.iter_any():
            if not ttft:
                ttft = (time.perf_counter() - started) * 1000
            chunks += data.count(b"data: ")
            if b"[DONE]" in data or b"response.completed" in data or b"message_stop" in data:
                finished = True
    return ttft, chunks, finished


async def streaming(session: aiohttp.ClientSession, target: Target, concurrency: int, seconds: float) -> dict[str, float]:
    url, body = target.endpoint("stream200"), target.body("stream200", stream=True)
    ttfts: list[float] = []
    chunks = failures = 0
    stop_at = 0.0

    async def worker() -> None:
        nonlocal chunks, failures
        while time.monotonic() < stop_at:
            ttft, count, ok = await one_stream(session, url, body, target.headers)
            if ok:
                ttfts.append(ttft)
                chunks += count
            else:
                failures += 1

    stop_at = time.monotonic() + 1.0
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    ttfts.clear()
    chunks = failures = 0
    cpu_before = cpu_seconds(target.pid)
    started = time.monotonic()
    stop_at = started + seconds
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.monotonic() - started
    cpu = cpu_seconds(target.pid) - cpu_before
    return {
        "chunks_per_s": chunks / elapsed,
        "cpu_us_per_chunk": cpu / max(chunks, 1) * 1e6,
        # Per chunk the provider sent (each stream has 200), whatever the client's format.
        "cpu_us_per_upstream_chunk": cpu / max(len(ttfts) * 200, 1) * 1e6,
        "streams": len(ttfts),
        "ttft_p50_ms": statistics.median(ttfts) if ttfts else 0.0,
        "ttft_p99_ms": percentile(ttfts, 0.99) if ttfts else 0.0,
        "failures": failures,
    }


async def memory(session: aiohttp.ClientSession, target: Target, streams: int) -> dict[str, float]:
    assert target.pid is not None
    url, body = target.endpoint("slow"), target.body("slow", stream=True)
    idle = rss_mb(target.pid)
    peak = idle
    tasks = [asyncio.ensure_future(one_stream(session, url, body, target.headers)) for _ in range(streams)]
    while not all(task.done() for task in tasks):
        peak = max(peak, rss_mb(target.pid))
        await asyncio.sleep(0.25)
    results = [task.result() for task in tasks]
    return {
        "streams": streams,
        "completed": sum(1 for _, _, ok in results if ok),
        "rss_idle_mb": idle,
        "rss_peak_mb": peak,
    }


# ── setup ────────────────────────────────────────────────────────────────────────────────────
async def configure_gateway(base: str) -> str:
    async with aiohttp.ClientSession(base_url=base) as session:
        async with session.post("/api/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD}) as r:
            token = (await r.json())["access_token"]
        admin = {"Authorization": f"Bearer {token}"}
        for profile in PROFILES:
            payload = {
                "name": profile,
                "base_url": f"http://127.0.0.1:{MOCK_PORT}/{profile}/v1",
                "api_key": "sk-bench-upstream-key",
                "models": [],
                "model_mapping": {profile: "mock-gpt"},
                "idle_timeout": 120,
                "first_byte_timeout": 120,
            }
            async with session.post("/api/admin/channels", json=payload, headers=admin) as r:
                assert r.status == 201, await r.text()
            # The same upstream reached in its own formats: passed through, not translated.
            native = [
                {"name": f"{profile}-responses", "responses_api": True, "model_mapping": {f"{profile}-responses": "mock-gpt"}},
                {"name": f"{profile}-anthropic", "type": "anthropic", "model_mapping": {f"{profile}-anthropic": "mock-gpt"}},
            ]
            for extra in native:
                async with session.post("/api/admin/channels", json={**payload, **extra}, headers=admin) as r:
                    assert r.status == 201, await r.text()
        async with session.post("/api/keys", json={"name": "bench"}, headers=admin) as r:
            return str((await r.json())["key"])


async def run(quick: bool) -> dict[str, Any]:
    os.sched_setaffinity(0, {CORE_LOAD})
    seconds = 2.0 if quick else 4.0
    rounds = 1 if quick else 3
    latency_count = 150 if quick else 500
    memory_streams = 300 if quick else 1000
    workdir = Path(tempfile.mkdtemp(prefix="acgw-bench-"))
    procs = Processes()
    profile_args = [f"--profile={name}:" + ",".join(f"{k}={v}" for k, v in opts.items()) for name, opts in PROFILES.items()]
    try:
        procs.spawn([PYTHON, "-m", "app.devtools.mock_upstream", "--port", str(MOCK_PORT), *profile_args], CORE_LOAD, workdir / "mock.log", env={**os.environ, "PYTHONPATH": str(ROOT / "backend")})
        proxy = procs.spawn([PYTHON, "bench/minimal_proxy.py", "--port", str(PROXY_PORT), "--upstream", f"http://127.0.0.1:{MOCK_PORT}"], CORE_SUT, workdir / "proxy.log")
        uvicorn_proxy = procs.spawn([PYTHON, "bench/minimal_proxy_uvicorn.py", "--port", str(UVICORN_PROXY_PORT), "--upstream", f"http://127.0.0.1:{MOCK_PORT}"], CORE_SUT, workdir / "proxy-uvicorn.log")
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT / "backend"),
            "DATA_DIR": str(workdir / "data"),
            "PORT": str(GATEWAY_PORT),
            "ADMIN_PASSWORD": ADMIN_PASSWORD,
            "LLM_CONCURRENCY": "5000",
            # Limits stay on (every call is counted against the user, the key's owner and the
            # client address) but are set above what the load generator sends.
            "DEFAULT_USER_RPM": "1000000",
            "DEFAULT_USER_CONCURRENT_STREAMS": "10000",
            "IP_RPM": "1000000",
        }
        for name in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "ENCRYPTION_KEYS"):
            env.pop(name, None)
        gateway = procs.spawn([PYTHON, "-m", "app", "serve"], CORE_SUT, workdir / "gateway.log", env=env)
        await wait_ready(f"http://127.0.0.1:{MOCK_PORT}/_mock/stats")
        await wait_ready(f"http://127.0.0.1:{PROXY_PORT}/")
        await wait_ready(f"http://127.0.0.1:{UVICORN_PROXY_PORT}/")
        await wait_ready(f"http://127.0.0.1:{GATEWAY_PORT}/readyz")
        api_key = await configure_gateway(f"http://127.0.0.1:{GATEWAY_PORT}")
        upstream_auth = {"Authorization": "Bearer sk-bench", "Content-Type": "application/json"}
        targets = [
            Target("direct", f"http://127.0.0.1:{MOCK_PORT}/{{profile}}/v1/chat/completions", upstream_auth, "mock-gpt", None),
            Target("proxy", f"http://127.0.0.1:{PROXY_PORT}/{{profile}}/v1/chat/completions", upstream_auth, "mock-gpt", proxy.pid),
            Target("proxy-uvicorn", f"http://127.0.0.1:{UVICORN_PROXY_PORT}/{{profile}}/v1/chat/completions", upstream_auth, "mock-gpt", uvicorn_proxy.pid),
            Target("gateway", f"http://127.0.0.1:{GATEWAY_PORT}/v1/chat/completions", {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}, "{profile}", gateway.pid),
        ]
        results: dict[str, Any] = {target.name: {} for target in targets}  # + "translation"
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=None)) as session:
            # Targets are interleaved round by round and the median is kept, so slow drift in the
            # machine's speed (common on shared VMs) affects every target alike.
            phases = {
                "throughput_c32_0ms": lambda t: throughput(session, t, "fast", 32, seconds),
                "throughput_c32_50ms": lambda t: throughput(session, t, "lat50", 32, seconds),
                "latency_c1": lambda t: latency(session, t, "fast", latency_count),
                "streaming_c32": lambda t: streaming(session, t, 32, seconds),
            }
            for phase, measure in phases.items():
                samples: dict[str, list[dict[str, float]]] = {t.name: [] for t in targets}
                for round_index in range(rounds):
                    for target in targets:
                        print(f"[{phase}] round {round_index + 1}/{rounds}: {target.name}", flush=True)
                        samples[target.name].append(await measure(target))
                for name, runs in samples.items():
                    results[name][phase] = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
            # Other formats: the same gateway, its streams as Responses and Messages events, translated
            # from chat and passed through from channels speaking them.
            gateway_target = targets[3]
            variants = [
                gateway_target,
                Target("gateway-responses", f"http://127.0.0.1:{GATEWAY_PORT}/v1/responses", gateway_target.headers, "{profile}", gateway.pid, "responses"),
                Target("gateway-messages", f"http://127.0.0.1:{GATEWAY_PORT}/v1/messages", gateway_target.headers, "{profile}", gateway.pid, "messages"),
                Target("gateway-responses-native", f"http://127.0.0.1:{GATEWAY_PORT}/v1/responses", gateway_target.headers, "{profile}-responses", gateway.pid, "responses"),
                Target("gateway-messages-native", f"http://127.0.0.1:{GATEWAY_PORT}/v1/messages", gateway_target.headers, "{profile}-anthropic", gateway.pid, "messages"),
            ]
            translation: dict[str, list[dict[str, float]]] = {t.name: [] for t in variants}
            for round_index in range(rounds):
                for target in variants:
                    print(f"[translation] round {round_index + 1}/{rounds}: {target.name}", flush=True)
                    translation[target.name].append(await streaming(session, target, 32, seconds))
            results["translation"] = {
                name: {key: statistics.median(run[key] for run in runs) for key in runs[0]}
                for name, runs in translation.items()
            }
            for target in (targets[1], targets[3]):
                print(f"[memory] {target.name}: {memory_streams} concurrent slow streams", flush=True)
                results[target.name]["memory"] = await memory(session, target, memory_streams)
        logged = sum(1 for _ in (workdir / "gateway.log").open("rb"))
        results["gateway"]["log_lines"] = logged
        return results
    finally:
        procs.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def summarise(results: dict[str, Any]) -> dict[str, Any]:
    d, p, g = results["direct"], results["proxy"], results["gateway"]
    u = results["proxy-uvicorn"]
    return {
        "cpu_ratio_proxy_over_gateway": p["throughput_c32_0ms"]["cpu_us_per_request"] / g["throughput_c32_0ms"]["cpu_us_per_request"],
        "cpu_ratio_uvicorn_proxy_over_gateway": u["throughput_c32_0ms"]["cpu_us_per_request"] / g["throughput_c32_0ms"]["cpu_us_per_request"],
        "cpu_ratio_streaming_proxy_over_gateway": p["streaming_c32"]["cpu_us_per_chunk"] / g["streaming_c32"]["cpu_us_per_chunk"],
        "throughput_ratio_0ms_vs_uvicorn_proxy": g["throughput_c32_0ms"]["rps"] / u["throughput_c32_0ms"]["rps"],
        "streaming_ratio_vs_uvicorn_proxy": g["streaming_c32"]["chunks_per_s"] / u["streaming_c32"]["chunks_per_s"],
        "throughput_ratio_0ms": g["throughput_c32_0ms"]["rps"] / p["throughput_c32_0ms"]["rps"],
        "throughput_ratio_50ms": g["throughput_c32_50ms"]["rps"] / p["throughput_c32_50ms"]["rps"],
        "streaming_ratio": g["streaming_c32"]["chunks_per_s"] / p["streaming_c32"]["chunks_per_s"],
        "added_p50_ms_vs_direct": g["latency_c1"]["p50_ms"] - d["latency_c1"]["p50_ms"],
        "added_p99_ms_vs_direct": g["latency_c1"]["p99_ms"] - d["latency_c1"]["p99_ms"],
        "proxy_added_p50_ms_vs_direct": p["latency_c1"]["p50_ms"] - d["latency_c1"]["p50_ms"],
        "ttft_added_p50_ms_vs_proxy": g["streaming_c32"]["ttft_p50_ms"] - p["streaming_c32"]["ttft_p50_ms"],
        "gateway_rss_peak_mb": g["memory"]["rss_peak_mb"],
        "responses_over_chat_cpu_per_chunk": _translated(results, "gateway-responses"),
        "messages_over_chat_cpu_per_chunk": _translated(results, "gateway-messages"),
        "responses_native_over_chat_cpu_per_chunk": _translated(results, "gateway-responses-native"),
        "messages_native_over_chat_cpu_per_chunk": _translated(results, "gateway-messages-native"),
    }


def _translated(results: dict[str, Any], name: str) -> float:
    """CPU per upstream chunk of a translated stream ÷ the pass-through's, in the same rounds."""
    runs = results["translation"]
    return runs[name]["cpu_us_per_upstream_chunk"] / runs["gateway"]["cpu_us_per_upstream_chunk"]


def markdown(results: dict[str, Any], summary: dict[str, Any], command: str) -> str:
    rows = []
    for name in ("direct", "proxy", "proxy-uvicorn", "gateway"):
        r = results[name]
        memory_cell = f"{r['memory']['rss_peak_mb']:.0f} MB ({r['memory']['completed']}/{r['memory']['streams']})" if "memory" in r else "—"
        cpu_request = f"{r['throughput_c32_0ms']['cpu_us_per_request']:.0f}" if name != "direct" else "—"
        cpu_chunk = f"{r['streaming_c32']['cpu_us_per_chunk']:.1f}" if name != "direct" else "—"
        rows.append(
            f"| {name} | {r['throughput_c32_0ms']['rps']:.0f} | {cpu_request} | {r['throughput_c32_50ms']['rps']:.0f} | "
            f"{r['latency_c1']['p50_ms']:.2f} / {r['latency_c1']['p99_ms']:.2f} | "
            f"{r['streaming_c32']['ttft_p50_ms']:.1f} | {r['streaming_c32']['chunks_per_s']:.0f} | {cpu_chunk} | {memory_cell} |"
        )
    targets = [
        ("gateway throughput ÷ proxy, 0 ms upstream", summary["throughput_ratio_0ms"], "≥ 0.70"),
        ("gateway throughput ÷ proxy, 50 ms upstream", summary["throughput_ratio_50ms"], "≥ 0.70"),
        ("gateway chunks/s ÷ proxy (200-chunk streams)", summary["streaming_ratio"], "≥ 0.70"),
        ("gateway CPU per request ÷ proxy's (noise-robust; auth, limits, routing, logging on)", 1 / summary["cpu_ratio_proxy_over_gateway"], "≤ 1.40"),
        ("gateway CPU per relayed chunk ÷ proxy's", 1 / summary["cpu_ratio_streaming_proxy_over_gateway"], "≤ 1.25"),
        ("gateway throughput ÷ uvicorn proxy, 0 ms (reference)", summary["throughput_ratio_0ms_vs_uvicorn_proxy"], "—"),
        ("uvicorn proxy CPU per request ÷ gateway CPU per request", summary["cpu_ratio_uvicorn_proxy_over_gateway"], "—"),
        ("gateway chunks/s ÷ uvicorn proxy (reference)", summary["streaming_ratio_vs_uvicorn_proxy"], "—"),
        ("gateway added p50 latency over direct, c=1 (ms)", summary["added_p50_ms_vs_direct"], "≤ 1.0"),
        ("  of which the minimal proxy's own hop (ms)", summary["proxy_added_p50_ms_vs_direct"], "—"),
        ("gateway RSS with 1,000 concurrent streams (MB)", summary["gateway_rss_peak_mb"], "< 300"),
        ("stream CPU per upstream chunk: /v1/responses ÷ /v1/chat/completions", summary["responses_over_chat_cpu_per_chunk"], "≤ 2.0"),
        ("stream CPU per upstream chunk: /v1/messages ÷ /v1/chat/completions", summary["messages_over_chat_cpu_per_chunk"], "≤ 2.0"),
        ("  passed through to a Responses channel ÷ chat", summary["responses_native_over_chat_cpu_per_chunk"], "≤ 1.25"),
        ("  passed through to an Anthropic channel ÷ chat", summary["messages_native_over_chat_cpu_per_chunk"], "≤ 1.25"),
    ]
    lines = [
        f"Command: `{command}`  ",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
        "system under test on core 0, mock upstream + load generator on core 1.",
        "",
        "| target | req/s c=32 (0 ms) | CPU µs/request | req/s c=32 (50 ms) | latency c=1 p50 / p99 (ms) | TTFT p50 (ms) | chunks/s | CPU µs/chunk | RSS, 1k streams |",
        "|---|---|---|---|---|---|---|---|---|",
        *rows,
        "",
        "| ratio | measured | target |",
        "|---|---|---|",
        *(f"| {label} | {value:.2f} | {goal} |" for label, value, goal in targets),
        "",
        "| gateway stream as (200 chunks, c=32) | CPU µs per upstream chunk | TTFT p50 (ms) | failures |",
        "|---|---|---|---|",
        *(
            f"| {name} | {run['cpu_us_per_upstream_chunk']:.1f} | {run['ttft_p50_ms']:.1f} | {run['failures']:.0f} |"
            for name, run in results["translation"].items()
        ),
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:
        runner = asyncio.run
    results = runner(run(args.quick))
    summary = summarise(results)
    command = "make bench" + (" QUICK=1" if args.quick else "")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stamp}.json").write_text(json.dumps({"results": results, "summary": summary}, indent=2))
    table = markdown(results, summary, command)
    (out / f"{stamp}.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
