"""Prometheus metrics (`GET /metrics`).

Counters and histograms are fed by the call-log writer once a batch is written (one row = one
call), so the request path pays nothing for them; gauges (calls in flight, the LLM queue, breaker
states, the log writer's queue, running chat replies, asyncio tasks) are read when scraped and every
few seconds.

With several worker processes behind one port, set `PROMETHEUS_MULTIPROC_DIR` to an empty
directory shared by them: each process then writes its values there and any of them answers a
scrape with the sum (gauges: the sum over processes that are running; a process that is killed
without shutting down keeps its last gauge values until the directory is emptied at the next
start). Without it, each process reports its own.
"""

from __future__ import annotations

import os
from collections import Counter as Tally
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

SECONDS_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 7.5, 10, 15, 20, 30, 60, 120, 300)
TOKEN_KINDS = ("prompt", "completion", "reasoning", "cached")
ERROR_ENDS = frozenset({"upstream_error", "timeout", "rejected", "interrupted"})
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.multiprocess = bool(os.environ.get(MULTIPROC_ENV))
        # A registry of this app's own (several apps can live in one process, e.g. in tests).
        self.registry = CollectorRegistry()
        labels = ("source", "model", "channel")
        self.requests = Counter(
            "acgw_requests", "Model calls by how they ended", (*labels, "end_reason"),
            registry=self.registry,
        )  # fmt: skip
        self.errors = Counter(
            "acgw_errors", "Model calls that failed (upstream error, timeout, refused)",
            (*labels, "end_reason"), registry=self.registry,
        )  # fmt: skip
        self.tokens = Counter(
            "acgw_tokens", "Tokens, by kind", (*labels, "kind"), registry=self.registry
        )
        # Spend in the site's currency (a float here: Prometheus counts in floats; the exact
        # amounts are in the call logs); calls of models without a price are counted apart.
        self.cost = Counter(
            "acgw_cost", "Spend in the site's currency", labels, registry=self.registry
        )
        self.unpriced = Counter(
            "acgw_unpriced_calls", "Calls of models without a price", labels,
            registry=self.registry,
        )  # fmt: skip
        self.duration = Histogram(
            "acgw_request_duration_seconds", "Model call duration", ("model", "channel"),
            buckets=SECONDS_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.ttft = Histogram(
            "acgw_ttft_seconds", "Time to the first token", ("model", "channel"),
            buckets=SECONDS_BUCKETS, registry=self.registry,
        )  # fmt: skip
        mode: dict[str, Any] = {"multiprocess_mode": "livesum"}
        self.in_flight = Gauge(
            "acgw_calls_in_flight",
            "Model calls holding an LLM slot",
            registry=self.registry,
            **mode,
        )
        self.queued = Gauge(
            "acgw_llm_queue", "Calls waiting for an LLM slot", registry=self.registry, **mode
        )
        self.breakers = Gauge(
            "acgw_breakers", "Channel+model circuit breakers by state", ("state",),
            registry=self.registry, **mode,
        )  # fmt: skip
        self.log_queue = Gauge(
            "acgw_call_log_queue",
            "Call-log rows waiting to be written",
            registry=self.registry,
            **mode,
        )
        self.replies = Gauge(
            "acgw_chat_replies_running",
            "Web-chat replies being generated",
            registry=self.registry,
            **mode,
        )
        self.tasks = Gauge(
            "acgw_asyncio_tasks",
            "asyncio tasks alive in the server (steady when nothing leaks)",
            registry=self.registry,
            **mode,
        )

    def observe_batch(self, rows: list[dict[str, Any]]) -> None:
        """Count a batch of written call-log rows (one label lookup per distinct label set)."""
        requests: Tally[tuple[str, ...]] = Tally()
        tokens: Tally[tuple[str, ...]] = Tally()
        costs: Tally[tuple[str, ...]] = Tally()
        unpriced: Tally[tuple[str, ...]] = Tally()
        durations: dict[tuple[str, str], list[float]] = defaultdict(list)
        ttfts: dict[tuple[str, str], list[float]] = defaultdict(list)
        for row in rows:
            model, channel = row["requested_model"], str(row["channel_id"] or "")
            source = row["source"]
            requests[(source, model, channel, row["end_reason"])] += 1
            for kind in TOKEN_KINDS:
                amount = row.get(f"{kind}_tokens")
                if amount:
                    tokens[(source, model, channel, kind)] += amount
            cost = row.get("cost")
            if cost:
                costs[(source, model, channel)] += cost
            elif cost is None and (row["end_reason"] == "done" or row.get("total_tokens")):
                unpriced[(source, model, channel)] += 1
            if row["channel_id"] is not None:
                durations[(model, channel)].append((row["duration_ms"] or 0) / 1000)
                if row.get("ttft_ms") is not None:
                    ttfts[(model, channel)].append(row["ttft_ms"] / 1000)
        for labels, count in requests.items():
            self.requests.labels(*labels).inc(count)
            if labels[3] in ERROR_ENDS:
                self.errors.labels(*labels).inc(count)
        for labels, amount in tokens.items():
            self.tokens.labels(*labels).inc(amount)
        for labels, nano in costs.items():
            self.cost.labels(*labels).inc(nano / 1e9)
        for labels, count in unpriced.items():
            self.unpriced.labels(*labels).inc(count)
        for histogram, samples in ((self.duration, durations), (self.ttft, ttfts)):
            for pair, values in samples.items():
                child = histogram.labels(*pair)
                for value in values:
                    child.observe(value)

    def set_gauges(self, read: Callable[[], dict[str, Any]]) -> None:
        values = read()
        self.in_flight.set(values["in_flight"])
        self.queued.set(values["queued"])
        self.log_queue.set(values["log_queue"])
        self.replies.set(values["replies"])
        self.tasks.set(values["tasks"])
        for state, count in values["breakers"].items():
            self.breakers.labels(state).set(count)

    def close(self) -> None:
        """At shutdown: this process's gauges stop counting in the multi-process sums."""
        if self.multiprocess:
            multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]

    def exposition(self) -> bytes:
        if self.multiprocess:
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return bytes(generate_latest(registry))
        return bytes(generate_latest(self.registry))
