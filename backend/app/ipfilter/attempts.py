"""`AttemptRecorder`: counts blocked requests per (client address, rule) and writes them in batches.

Nothing is written per request: hits are added up in memory and flushed every few seconds as one
upsert per (address, rule) pair (`count = count + n`). Memory and rows stay bounded under a flood:
each rule gets its own row for at most `MAX_ADDRESSES_PER_RULE` addresses (per process); hits from
further addresses (e.g. a whole IPv6 range rotating addresses) are counted on one row named by the
rule's range.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Insert, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.tasks import Periodic
from app.ipfilter.cache import BlockRule
from app.models.base import utcnow
from app.models.ip_rule import BlockedAttempt

logger = logging.getLogger(__name__)

MAX_ADDRESSES_PER_RULE = 1000
MAX_PENDING = 20_000
FLUSH_SECONDS = 2.0
SAMPLE_LENGTH = 255


@dataclass
class _Tally:
    rule_cidr: str
    count: int
    first_seen: datetime
    last_seen: datetime
    path: str
    user_agent: str


class AttemptRecorder:
    def __init__(self, engine: AsyncEngine, flush_seconds: float = FLUSH_SECONDS) -> None:
        self._engine = engine
        self._pending: dict[tuple[str, int], _Tally] = {}
        self._addresses: dict[int, set[str]] = {}  # rule id -> addresses with their own row
        self._periodic = Periodic("blocked-attempts", flush_seconds, self.flush)

    def record(self, ip: str, rule: BlockRule, path: str, user_agent: str) -> None:
        now = utcnow()
        addresses = self._addresses.setdefault(rule.id, set())
        if ip not in addresses:
            if len(addresses) < MAX_ADDRESSES_PER_RULE and len(self._pending) < MAX_PENDING:
                addresses.add(ip)
            else:
                ip = rule.cidr
        key = (ip, rule.id)
        tally = self._pending.get(key)
        if tally is None:
            self._pending[key] = _Tally(
                rule.cidr, 1, now, now, path[:SAMPLE_LENGTH], user_agent[:SAMPLE_LENGTH]
            )
            return
        tally.count += 1
        tally.last_seen = now
        tally.path = path[:SAMPLE_LENGTH]
        tally.user_agent = user_agent[:SAMPLE_LENGTH]

    def start(self) -> None:
        self._periodic.start()

    def _upsert(self) -> Insert:
        table = BlockedAttempt.__table__
        assert isinstance(table, Table)
        insert = postgresql.insert if self._engine.dialect.name == "postgresql" else sqlite.insert
        stmt = insert(table)
        return stmt.on_conflict_do_update(
            index_elements=[table.c.ip, table.c.rule_id],
            set_={
                "count": table.c.count + stmt.excluded.count,
                "last_seen": stmt.excluded.last_seen,
                "last_path": stmt.excluded.last_path,
                "last_user_agent": stmt.excluded.last_user_agent,
            },
        )

    async def flush(self) -> None:
        if not self._pending:
            return
        pending, self._pending = self._pending, {}
        rows = [
            {
                "ip": ip,
                "rule_id": rule_id,
                "rule_cidr": t.rule_cidr,
                "count": t.count,
                "first_seen": t.first_seen,
                "last_seen": t.last_seen,
                "last_path": t.path,
                "last_user_agent": t.user_agent,
            }
            for (ip, rule_id), t in pending.items()
        ]
        try:
            async with self._engine.begin() as conn:
                await conn.execute(self._upsert(), rows)
        except SQLAlchemyError as exc:
            # Counts are statistics: keep them for the next flush rather than fail anything.
            logger.warning("Could not write blocked-attempt counts (%s); retrying later", exc)
            for key, tally in pending.items():
                current = self._pending.get(key)
                if current is None and len(self._pending) >= MAX_PENDING:
                    continue
                if current is None:
                    self._pending[key] = tally
                else:
                    current.count += tally.count
                    current.first_seen = tally.first_seen

    async def stop(self) -> None:
        await self._periodic.stop()
        await self.flush()
