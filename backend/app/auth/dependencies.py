"""The sign-in routes' own dependencies (who is calling: `app.access.dependencies`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from app.auth.context import AuthContextDep
from app.auth.throttle import LoginThrottle


async def get_login_throttle(ctx: AuthContextDep) -> LoginThrottle:
    return LoginThrottle(ctx.limiter, ctx.runtime.current)


LoginThrottleDep = Annotated[LoginThrottle, Depends(get_login_throttle)]
