"""`RuntimeSettingsCache`: the values in force, held in memory and reloaded when they change.

Reads are a plain attribute access (`store.current.ip_rpm`), so the hot path never touches the
database. A write reloads the store in the writing process and, through the change bus, in every
other process. Listeners react to changed values (e.g. the LLM semaphore is resized).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.runtime_values import RuntimeValues
from app.runtime_settings import service

logger = logging.getLogger(__name__)

Listener = Callable[[RuntimeValues, RuntimeValues], None]


class RuntimeSettingsCache:
    def __init__(self, defaults: RuntimeValues) -> None:
        self.defaults = defaults
        self.current = defaults
        self._listeners: list[Listener] = []

    def listen(self, listener: Listener) -> None:
        """Call `listener(old, new)` whenever the values in force change."""
        self._listeners.append(listener)

    async def reload(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        async with sessionmaker() as db:
            self.apply(await service.load(db, self.defaults))

    def apply(self, new: RuntimeValues) -> None:
        old, self.current = self.current, new
        if old == new:
            return
        before = old.model_dump()
        changed = sorted(k for k, v in new.model_dump().items() if before[k] != v)
        logger.info("Runtime settings changed: %s", ", ".join(changed))
        for listener in self._listeners:
            listener(old, new)
