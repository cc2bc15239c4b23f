"""What the agent routes use of the app's context (see `app.core.deps`)."""

from __future__ import annotations

from typing import Annotated, Protocol

from fastapi import Depends

from app.core.deps import CoreContext, get_context
from app.runtime_settings.cache import RuntimeSettingsCache


class AgentsContext(CoreContext, Protocol):
    runtime: RuntimeSettingsCache


AgentsContextDep = Annotated[AgentsContext, Depends(get_context)]
