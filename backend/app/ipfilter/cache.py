"""`BlockListCache`: which rule (if any) covers a client address, in O(log n) for any number of rules.

CIDR blocks never partly overlap — two blocks are either disjoint or one contains the other — so
the rules of each address family are sorted by start (wider first on ties) and each remembers the
nearest rule that encloses it. A lookup bisects to the last rule starting at or before the address
and walks up the enclosing chain (at most one step per prefix length) until a rule contains it.

Expiry is built in: the list knows when its next rule expires, and `match` drops expired rules then,
without a database round trip.
"""

from __future__ import annotations

import bisect
import ipaddress
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.client_ip import IPNetwork
from app.models import IPRule
from app.models.base import utcnow


def in_force(now: datetime) -> ColumnElement[bool]:
    """Rules that block now: enabled, and not expired."""
    return and_(IPRule.enabled, or_(IPRule.expires_at.is_(None), IPRule.expires_at > now))


@dataclass(frozen=True)
class BlockRule:
    id: int
    network: IPNetwork
    expires_at: float | None = None  # Unix time; None: never

    @property
    def cidr(self) -> str:
        return str(self.network)


class _Family:
    def __init__(self, rules: list[BlockRule]) -> None:
        rules.sort(key=lambda r: (int(r.network.network_address), -r.network.num_addresses))
        self.rules = rules
        self.starts = [int(r.network.network_address) for r in rules]
        self.ends = [int(r.network.broadcast_address) for r in rules]
        self.parents: list[int] = []
        stack: list[int] = []
        for index, start in enumerate(self.starts):
            while stack and self.ends[stack[-1]] < start:
                stack.pop()
            self.parents.append(stack[-1] if stack else -1)
            stack.append(index)

    def match(self, value: int) -> BlockRule | None:
        index = bisect.bisect_right(self.starts, value) - 1
        while index >= 0:
            if self.ends[index] >= value:
                return self.rules[index]
            index = self.parents[index]
        return None


class BlockListCache:
    def __init__(
        self, rules: Iterable[BlockRule] = (), clock: Callable[[], float] = time.time
    ) -> None:
        self._clock = clock
        self._all: list[BlockRule] = []
        self._v4 = _Family([])
        self._v6 = _Family([])
        self._next_expiry = math.inf
        self.replace(rules)

    def __len__(self) -> int:
        return len(self._v4.rules) + len(self._v6.rules)

    async def reload(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        """Every enabled, unexpired rule from the database, compiled."""
        now = utcnow()
        async with sessionmaker() as db:
            rows = await db.scalars(select(IPRule).where(in_force(now)))
            rules = [
                BlockRule(
                    id=row.id,
                    network=ipaddress.ip_network(row.cidr),
                    expires_at=row.expires_at.timestamp() if row.expires_at else None,
                )
                for row in rows.all()
            ]
        self.replace(rules)

    def replace(self, rules: Iterable[BlockRule]) -> None:
        """Compile a new rule set (the old one keeps answering until this returns)."""
        self._all = list(rules)
        self._compile()

    def _compile(self) -> None:
        now = self._clock()
        live = [r for r in self._all if r.expires_at is None or r.expires_at > now]
        self._all = live
        self._v4 = _Family([r for r in live if r.network.version == 4])
        self._v6 = _Family([r for r in live if r.network.version == 6])
        expiries = [r.expires_at for r in live if r.expires_at is not None]
        self._next_expiry = min(expiries, default=math.inf)

    def match(self, address: str) -> BlockRule | None:
        """The rule blocking `address` (text, as resolved for the request), or None."""
        if not self._all:
            return None
        if self._clock() >= self._next_expiry:
            self._compile()
        try:
            parsed = ipaddress.ip_address(address)
        except ValueError:
            return None
        if parsed.version == 6:
            mapped = parsed.ipv4_mapped
            if mapped is not None:
                return self._v4.match(int(mapped))
            return self._v6.match(int(parsed))
        return self._v4.match(int(parsed))
