"""Small helpers for the background tasks a component owns."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

logger = logging.getLogger(__name__)


async def cancel_and_wait(task: asyncio.Task[Any] | None) -> None:
    """Cancel `task` (if any) and wait until it has finished."""
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


class TaskSet:
    """Fire-and-forget tasks kept referenced until they finish, and awaited on shutdown."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()

    def spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        """Wait for every task spawned so far (their errors are theirs to log)."""
        for task in list(self._tasks):
            with contextlib.suppress(Exception):
                await task


class Periodic:
    """Runs `run_once` every `interval` seconds until stopped; a failed run is logged, not fatal."""

    def __init__(
        self, name: str, interval: float, run_once: Callable[[], Awaitable[object]]
    ) -> None:
        self._name = name
        self._interval = interval
        self._run_once = run_once
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop(), name=self._name)

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self._run_once()
            except Exception:
                logger.exception("Background job %s failed", self._name)
