"""What the sign-in routes use of the app's context (see `app.core.deps`)."""

from __future__ import annotations

from typing import Annotated, Protocol

from fastapi import Depends

from app.auth.account_mail import AccountMail
from app.core.deps import CoreContext, get_context
from app.core.tasks import TaskSet
from app.ratelimit.limiter import RateLimiter
from app.runtime_settings.cache import RuntimeSettingsCache


class AuthContext(CoreContext, Protocol):
    account_mail: AccountMail
    limiter: RateLimiter
    runtime: RuntimeSettingsCache
    jobs: TaskSet


AuthContextDep = Annotated[AuthContext, Depends(get_context)]
