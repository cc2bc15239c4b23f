"""What the settings routes use of the app's context (see `app.core.deps`)."""

from __future__ import annotations

from typing import Annotated, Protocol

from fastapi import Depends

from app.core.deps import CoreContext, get_context
from app.runtime_settings.cache import RuntimeSettingsCache


class MailAvailability(Protocol):
    @property
    def available(self) -> bool:
        """Whether links (password reset, address confirmation) can be mailed."""


class RuntimeSettingsContext(CoreContext, Protocol):
    runtime: RuntimeSettingsCache

    @property
    def account_mail(self) -> MailAvailability: ...


RuntimeSettingsContextDep = Annotated[RuntimeSettingsContext, Depends(get_context)]
