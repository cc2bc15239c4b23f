"""The one role of `<domain>/cache.py`: an in-memory view of some rows, read at start and read
again when a change to them is announced on the change bus (`core.events`), here or by another
process. Every such view offers `reload`; the composition root wires each to its topic."""

from __future__ import annotations

from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker


class RowCache(Protocol):
    async def reload(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        """Read the rows again; until this returns, the previous view keeps answering."""
