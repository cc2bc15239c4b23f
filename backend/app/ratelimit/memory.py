"""`MovingWindows`: exact moving-window counters in this process's memory.

Each key keeps the times of the hits inside its window (a deque, oldest first); a hit fits when
fewer than `limit` remain after dropping the expired ones. Exact — never more than `limit` in any
`window` seconds — and O(1) amortised per hit. Idle keys are swept every `SWEEP_SECONDS`, so memory
follows the number of recently active keys, not every key ever seen.

(`limits`' own memory storage was measured here and not used: every hit schedules a sweep of all
keys that hops to a worker thread once per key, which costs far more CPU than the hit itself under
load.)
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

SWEEP_SECONDS = 10.0


class MovingWindows:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        # key -> (hit times, the longest window used with the key)
        self._hits: dict[str, tuple[deque[float], float]] = {}
        self._next_sweep = clock() + SWEEP_SECONDS

    def __len__(self) -> int:
        return len(self._hits)

    def _live(self, key: str, window: float, now: float) -> deque[float]:
        entry = self._hits.get(key)
        if entry is None:
            hits: deque[float] = deque()
            self._hits[key] = (hits, window)
            return hits
        hits = entry[0]
        if window > entry[1]:
            self._hits[key] = (hits, window)
        cutoff = now - window
        while hits and hits[0] <= cutoff:
            hits.popleft()
        return hits

    def hit(self, key: str, limit: int, window: float, cost: int = 1) -> float:
        """Record `cost` hits if they fit: 0.0. Otherwise the seconds until they would fit."""
        now = self._clock()
        if now >= self._next_sweep:
            self._sweep(now)
        hits = self._live(key, window, now)
        if len(hits) + cost <= limit:
            hits.extend([now] * cost)
            return 0.0
        return self._wait(hits, limit, window, cost, now)

    def peek(self, key: str, limit: int, window: float, cost: int = 1) -> float:
        now = self._clock()
        hits = self._live(key, window, now)
        if len(hits) + cost <= limit:
            return 0.0
        return self._wait(hits, limit, window, cost, now)

    @staticmethod
    def _wait(hits: deque[float], limit: int, window: float, cost: int, now: float) -> float:
        if cost > limit:
            return window
        # The hit that must expire before `cost` more fit.
        blocking = hits[len(hits) + cost - limit - 1]
        return max(blocking + window - now, 1e-3)

    def refund(self, key: str) -> None:
        """Take back the newest hit (a counted attempt that turned out not to count)."""
        entry = self._hits.get(key)
        if entry is not None and entry[0]:
            entry[0].pop()

    def clear(self, key: str) -> None:
        self._hits.pop(key, None)

    def _sweep(self, now: float) -> None:
        self._next_sweep = now + SWEEP_SECONDS
        idle = [
            k for k, (hits, window) in self._hits.items() if not hits or hits[-1] <= now - window
        ]
        for key in idle:
            del self._hits[key]
