from __future__ import annotations

from dataclasses import dataclass

import anyio
from sqlalchemy import text

from app.health.context import HealthContext

CHECK_TIMEOUT_SECONDS = 2.0


@dataclass(frozen=True)
class Readiness:
    ready: bool
    body: dict[str, object]


async def _database_ok(ctx: HealthContext) -> bool:
    try:
        with anyio.fail_after(CHECK_TIMEOUT_SECONDS):
            async with ctx.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        return True
    except Exception:
        return False


async def readiness(ctx: HealthContext) -> Readiness:
    if ctx.shutting_down:
        return Readiness(False, {"status": "shutting_down"})
    checks: dict[str, str] = {"database": "ok" if await _database_ok(ctx) else "unavailable"}
    if ctx.redis is not None:
        try:
            with anyio.fail_after(CHECK_TIMEOUT_SECONDS):
                checks["redis"] = "ok" if await ctx.redis.ping() else "unavailable"
        except Exception:
            checks["redis"] = "unavailable"
    ready = all(value == "ok" for value in checks.values())
    return Readiness(ready, {"status": "ok" if ready else "unavailable", "checks": checks})
