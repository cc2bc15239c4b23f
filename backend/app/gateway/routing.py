"""Candidate order: highest priority first; inside one priority, weighted random order."""

from __future__ import annotations

import random
from collections.abc import Sequence
from itertools import groupby
from typing import Protocol, TypeVar


class Weighted(Protocol):
    @property
    def priority(self) -> int: ...

    @property
    def weight(self) -> int: ...


T = TypeVar("T", bound=Weighted)
# One generator for the process: building a Random() seeds it from os.urandom, which is far too
# slow to do per request.
_RNG = random.Random()  # noqa: S311 (load spreading, not security)


def order_candidates(channels: Sequence[T], rng: random.Random | None = None) -> list[T]:
    """Priority groups in descending order, each shuffled by weight (Efraimidis-Spirakis keys).

    Every channel stays in the list, so failover can reach it; a heavier channel is simply more
    likely to come first.
    """
    if len(channels) == 1:
        return list(channels)
    rng = rng or _RNG
    ordered: list[T] = []
    by_priority = sorted(channels, key=lambda c: -c.priority)
    for _, group in groupby(by_priority, key=lambda c: c.priority):
        members = list(group)
        if len(members) == 1:
            ordered.extend(members)
            continue
        keyed = [(rng.random() ** (1.0 / max(c.weight, 1)), c) for c in members]
        keyed.sort(key=lambda pair: pair[0], reverse=True)
        ordered.extend(c for _, c in keyed)
    return ordered
