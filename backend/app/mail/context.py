"""What the mail-settings routes use of the app's context (see `app.core.deps`)."""

from __future__ import annotations

from typing import Annotated, Protocol

from fastapi import Depends

from app.core.deps import CoreContext, get_context
from app.mail.config import MailConfigStore
from app.runtime_settings.store import RuntimeSettingsStore


class MailContext(CoreContext, Protocol):
    mail_config: MailConfigStore
    runtime: RuntimeSettingsStore

    async def mail_changed(self) -> None: ...


MailContextDep = Annotated[MailContext, Depends(get_context)]
