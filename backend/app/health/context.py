"""What the health checks use of the app's context (see `app.core.deps`)."""

from __future__ import annotations

from typing import Annotated, Protocol

from fastapi import Depends
from redis.asyncio import Redis

from app.core.deps import CoreContext, get_context


class HealthContext(CoreContext, Protocol):
    redis: Redis | None
    shutting_down: bool


HealthContextDep = Annotated[HealthContext, Depends(get_context)]
