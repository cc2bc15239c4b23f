"""What the user routes use of the app's context (see `app.core.deps`)."""

from __future__ import annotations

from typing import Annotated, Protocol

from fastapi import Depends

from app.core.deps import CoreContext, get_context
from app.core.images import ImageDecoding
from app.runtime_settings.cache import RuntimeSettingsCache


class UsersContext(CoreContext, Protocol):
    images: ImageDecoding
    runtime: RuntimeSettingsCache


UsersContextDep = Annotated[UsersContext, Depends(get_context)]
