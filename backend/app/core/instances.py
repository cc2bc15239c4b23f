"""This server process among the others sharing the database, and which of them have died.

Each process registers a row (`server_instances`) and holds a lock on a file of its own under the
data directory for as long as it runs. The kernel lets go of that lock the moment the process
dies — however it dies — so on the same host a dead process is known at once: its lock file can be
locked. A process elsewhere (another container, another machine) is judged by its heartbeat:
dead when it has not been seen for `STALE_SECONDS`. What a dead process left running is then
finished by a live one (`logs.recovery`).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import uuid
from datetime import timedelta
from pathlib import Path

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from app.models import ServerInstance
from app.models.base import utcnow

HEARTBEAT_SECONDS = 10.0
STALE_SECONDS = 45.0


def _lock_is_free(path: str) -> bool | None:
    """Whether nobody holds the lock file at `path` (None: no such file here to ask)."""
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)  # closing releases a lock taken here
    return True


class InstanceRegistry:
    def __init__(self, engine: AsyncEngine, data_dir: Path) -> None:
        self._engine = engine
        self.id = uuid.uuid4().hex
        self.host = socket.gethostname()[:255]
        self.lock_path = (data_dir / "instances" / f"{self.id}.lock").resolve()
        self._fd: int | None = None

    async def register(self) -> None:
        os.makedirs(self.lock_path.parent, mode=0o700, exist_ok=True)
        self._fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        now = utcnow()
        async with self._engine.begin() as conn:
            await conn.execute(
                insert(ServerInstance).values(
                    id=self.id,
                    host=self.host,
                    lock_path=str(self.lock_path),
                    started_at=now,
                    seen_at=now,
                )
            )

    async def heartbeat(self) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                update(ServerInstance)
                .where(ServerInstance.id == self.id)
                .values(seen_at=utcnow())
                .execution_options(synchronize_session=False)
            )

    async def dead(self) -> list[str]:
        """The other registered processes that are no longer running."""
        stale_before = utcnow() - timedelta(seconds=STALE_SECONDS)
        async with self._engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(
                        ServerInstance.id,
                        ServerInstance.host,
                        ServerInstance.lock_path,
                        ServerInstance.seen_at,
                    ).where(ServerInstance.id != self.id)
                )
            ).all()
        found = []
        for instance_id, host, lock_path, seen_at in rows:
            free = _lock_is_free(lock_path) if host == self.host else None
            if free or (free is None and seen_at < stale_before):
                found.append(instance_id)
        return found

    async def forget(self, instance_ids: list[str]) -> None:
        """Remove dead processes' rows and (on this host) their lock files."""
        if not instance_ids:
            return
        # A read, then a transaction that starts by writing: on SQLite a transaction that reads
        # and then writes fails at once ("database is locked") if another process wrote between.
        async with self._engine.connect() as conn:
            paths = (
                (
                    await conn.execute(
                        select(ServerInstance.lock_path).where(
                            ServerInstance.id.in_(instance_ids), ServerInstance.host == self.host
                        )
                    )
                )
                .scalars()
                .all()
            )
        async with self._engine.begin() as conn:
            await conn.execute(delete(ServerInstance).where(ServerInstance.id.in_(instance_ids)))
        for path in paths:
            with contextlib.suppress(OSError):
                if _lock_is_free(path):
                    os.unlink(path)

    async def close(self) -> None:
        """A clean stop: this process's row and lock file go."""
        try:
            async with self._engine.begin() as conn:
                await conn.execute(delete(ServerInstance).where(ServerInstance.id == self.id))
        finally:
            if self._fd is not None:
                with contextlib.suppress(OSError):
                    os.unlink(self.lock_path)
                os.close(self._fd)
                self._fd = None
