"""How many call-log rows a second one SQLite file takes when several processes write it.

    .venv/bin/python bench/sqlite_writers.py                          # 1, 2, 4 and 8 writer processes
    .venv/bin/python bench/sqlite_writers.py --processes 1 2 --rows 400000

Each process runs the gateway's own `CallLogWriter` (batches, daily rollups, API-key last-use, the
crash journal) on one shared, migrated SQLite file, as `WORKERS=N` does. Together they are handed
`--rows` rows at once (split evenly) and write them all. Reported: rows handed over and rows in the
file (they must match), rows written per second (from the start of writing to the last process
done: the ceiling for call logs on SQLite on this machine, with the processes doing nothing else),
the slowest and the median batch, and how many batch writes failed (`database is locked` …) and
were retried.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import multiprocessing
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "backend"))


def settings_for(data_dir: Path) -> Any:
    from app.core.config import Settings

    return Settings(_env_file=None, server={"data_dir": data_dir})  # type: ignore[call-arg]


def row(index: int, process: int) -> dict[str, Any]:
    return {
        "created_at": datetime.now(UTC),
        "request_id": f"bench-{process}-{index}",
        "source": "api",
        "user_id": 1 + index % 20,
        "api_key_id": 1 + index % 50,
        "client_ip": f"10.0.{index % 256}.{process}",
        "requested_model": ("gpt-4o", "claude", "qwen")[index % 3],
        "upstream_model": "mock-gpt",
        "channel_id": 1 + index % 4,
        "channels_tried": [1 + index % 4],
        "stream": index % 2 == 0,
        "status_code": 200,
        "success": True,
        "end_reason": "done",
        "error_message": None,
        "prompt_tokens": 12,
        "completion_tokens": 40,
        "reasoning_tokens": 0,
        "cached_tokens": 0,
        "total_tokens": 52,
        "usage_source": "provider",
        "ttft_ms": 80,
        "duration_ms": 900,
    }


class Failures(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.failed = 0
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if "failed" in record.getMessage() or "locked" in record.getMessage():
            self.failed += 1
            if len(self.messages) < 3:
                self.messages.append(record.getMessage())


async def write(process: int, data_dir: Path, rows: int, out: Any) -> None:
    from app.core.db import create_engine
    from app.logs import writer as writer_module
    from app.logs.writer import CallLogWriter

    settings = settings_for(data_dir)
    engine = create_engine(settings)
    failures = Failures()
    logging.getLogger("app.logs.writer").addHandler(failures)
    batches: list[float] = []
    insert = CallLogWriter._insert

    async def timed(self: CallLogWriter, *args: Any, **kwargs: Any) -> None:
        started = time.monotonic()
        try:
            await insert(self, *args, **kwargs)
        finally:
            batches.append(time.monotonic() - started)

    writer_module.CallLogWriter._insert = timed  # type: ignore[method-assign]
    log = CallLogWriter(engine, settings.call_log, ZoneInfo("UTC"))
    for index in range(rows):
        log.submit(row(index, process))
    loop = asyncio.get_running_loop()
    started = loop.time()
    log.start()
    await log.stop()
    finished = loop.time() - started
    await engine.dispose()
    out.put(
        {
            "offered": rows,
            "finished_s": finished,
            "written": log.written,
            "dropped": log.dropped,
            "failed": failures.failed,
            "messages": failures.messages,
            "slowest_batch_s": max(batches, default=0.0),
            "median_batch_s": statistics.median(batches) if batches else 0.0,
        }
    )


def child(process: int, data_dir: Path, rows: int, out: Any) -> None:
    import uvloop

    uvloop.run(write(process, data_dir, rows, out))


def measure(processes: int, rows: int) -> dict[str, Any]:
    from app.core import migrate
    from app.core.db import create_engine

    data_dir = Path(tempfile.mkdtemp(prefix="acgw-sqlite-writers-"))

    async def prepare() -> None:
        engine = create_engine(settings_for(data_dir))
        await migrate.upgrade(engine)
        await engine.dispose()

    asyncio.run(prepare())
    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    workers = [
        context.Process(target=child, args=(n, data_dir, rows // processes, out))
        for n in range(processes)
    ]
    started = time.monotonic()
    for worker in workers:
        worker.start()
    results = [out.get(timeout=600) for _ in workers]
    for worker in workers:
        worker.join()
    elapsed = time.monotonic() - started
    with sqlite3.connect(data_dir / "app.db") as conn:
        in_file = conn.execute("SELECT count(*) FROM call_logs").fetchone()[0]
    return {
        "processes": processes,
        "offered": sum(r["offered"] for r in results),
        "written": sum(r["written"] for r in results),
        "rows_in_file": in_file,
        "rows_per_s": in_file / max(r["finished_s"] for r in results),
        "elapsed_s": elapsed,
        "failed_writes": sum(r["failed"] for r in results),
        "slowest_batch_s": max(r["slowest_batch_s"] for r in results),
        "median_batch_s": statistics.median(r["median_batch_s"] for r in results),
        "messages": [m for r in results for m in r["messages"]][:3],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--rows", type=int, default=200_000, help="rows in all (split evenly)")
    args = parser.parse_args()
    print("| writer processes | rows handed over | rows in the file | rows/s | slowest batch (s) | median batch (s) | failed batch writes |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for processes in args.processes:
        r = measure(processes, args.rows)
        print(
            f"| {processes} | {r['offered']:,} | {r['rows_in_file']:,} | {r['rows_per_s']:,.0f} | "
            f"{r['slowest_batch_s']:.2f} | {r['median_batch_s']:.3f} | {r['failed_writes']} |",
            flush=True,
        )
        for message in r["messages"]:
            print(f"  e.g. {message}", file=sys.stderr)


if __name__ == "__main__":
    main()
