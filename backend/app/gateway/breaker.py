"""A circuit breaker per (channel, model), kept in this process's memory.

Closed: calls flow; failures are counted. Open: the pair is skipped by routing until its cooldown
ends (at least the upstream's `Retry-After`). Half-open: one probe call is let through; success closes
the breaker, failure opens it again with a doubled cooldown (capped).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from app.core.runtime_values import RuntimeValues

BreakerKey = tuple[int, str]


@dataclass
class _State:
    outcomes: deque[bool]
    consecutive_failures: int = 0
    open_until: float = 0.0
    cooldown: float = 0.0
    probing: bool = False
    opened_count: int = 0


@dataclass
class CircuitBreaker:
    # The thresholds in force (runtime settings, read at each use so changes apply at once).
    settings: Callable[[], RuntimeValues]
    clock: Callable[[], float] = time.monotonic
    # Told when a pair opens here (seconds it stays open) or closes again (None), so other
    # processes can follow (see `follow`).
    on_change: Callable[[BreakerKey, float | None], None] | None = None
    _states: dict[BreakerKey, _State] = field(default_factory=dict)

    def _state(self, key: BreakerKey) -> _State:
        window = self.settings().breaker_window
        state = self._states.get(key)
        if state is None:
            state = self._states[key] = _State(outcomes=deque(maxlen=window))
        elif state.outcomes.maxlen != window:  # the setting changed: keep the latest outcomes
            state.outcomes = deque(state.outcomes, maxlen=window)
        return state

    def available(self, key: BreakerKey) -> bool:
        """Whether routing may use this pair now (does not claim the half-open probe)."""
        state = self._states.get(key)
        if state is None or state.open_until == 0.0:
            return True
        return self.clock() >= state.open_until and not state.probing

    def acquire(self, key: BreakerKey) -> bool:
        """Claim the right to call. In half-open state only one caller gets it."""
        state = self._states.get(key)
        if state is None or state.open_until == 0.0:
            return True
        if self.clock() < state.open_until or state.probing:
            return False
        state.probing = True
        return True

    def open_models(self, channel_id: int) -> list[str]:
        """Upstream models of this channel whose breaker is open now (in this process)."""
        now = self.clock()
        return sorted(
            model
            for (channel, model), state in self._states.items()
            if channel == channel_id and state.open_until and now < state.open_until
        )

    def counts(self) -> dict[str, int]:
        """How many (channel, model) pairs are closed, open and half-open now."""
        now = self.clock()
        counts = {"closed": 0, "open": 0, "half_open": 0}
        for state in self._states.values():
            if state.open_until == 0.0:
                counts["closed"] += 1
            elif now < state.open_until:
                counts["open"] += 1
            else:
                counts["half_open"] += 1
        return counts

    def retry_in(self, key: BreakerKey) -> float:
        state = self._states.get(key)
        if state is None:
            return 0.0
        return max(0.0, state.open_until - self.clock())

    def follow(self, key: BreakerKey, seconds: float | None) -> None:
        """Apply what another process saw: the pair opened for `seconds`, or closed (None)."""
        state = self._state(key)
        if seconds is None:
            if state.open_until:
                state.open_until = 0.0
                state.cooldown = 0.0
                state.consecutive_failures = 0
                state.probing = False
            return
        until = self.clock() + seconds
        if until > state.open_until:
            state.open_until = until
            state.cooldown = max(state.cooldown, seconds)
            state.probing = False

    def record_success(self, key: BreakerKey) -> None:
        state = self._state(key)
        was_open = state.open_until != 0.0
        state.outcomes.append(True)
        state.consecutive_failures = 0
        state.open_until = 0.0
        state.cooldown = 0.0
        state.probing = False
        if was_open and self.on_change is not None:
            self.on_change(key, None)

    def record_failure(self, key: BreakerKey, retry_after: float | None = None) -> None:
        s = self.settings()
        state = self._state(key)
        state.outcomes.append(False)
        state.consecutive_failures += 1
        failures = state.outcomes.count(False)
        window_tripped = (
            len(state.outcomes) >= s.breaker_window_min_calls
            and failures / len(state.outcomes) >= s.breaker_window_failure_rate
        )
        if (
            state.probing
            or retry_after is not None
            or state.consecutive_failures >= s.breaker_consecutive_failures
            or window_tripped
        ):
            if state.probing:
                state.cooldown = min(state.cooldown * 2, s.breaker_max_cooldown_seconds)
            else:
                state.cooldown = s.breaker_cooldown_seconds
            cooldown = max(state.cooldown, min(retry_after or 0.0, s.breaker_max_cooldown_seconds))
            state.open_until = self.clock() + cooldown
            state.probing = False
            state.opened_count += 1
            if self.on_change is not None:
                self.on_change(key, cooldown)

    def release_probe(self, key: BreakerKey) -> None:
        """A probe ended without a verdict (e.g. the caller's own error): let another try."""
        state = self._states.get(key)
        if state is not None:
            state.probing = False
