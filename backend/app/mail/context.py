"""What the mail-settings routes use of the app's context (see `app.core.deps`)."""

from __future__ import annotations

from typing import Annotated, Protocol

from fastapi import Depends

from app.core.deps import CoreContext, get_context
from app.mail.cache import MailConfigCache
from app.runtime_settings.cache import RuntimeSettingsCache


class MailContext(CoreContext, Protocol):
    mail_config: MailConfigCache
    runtime: RuntimeSettingsCache


MailContextDep = Annotated[MailContext, Depends(get_context)]
