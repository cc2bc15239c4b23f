"""What the billing routes use of the app's context (see `app.core.deps`)."""

from __future__ import annotations

from typing import Annotated, Protocol

from fastapi import Depends

from app.billing.budgets import Budgets
from app.core.deps import CoreContext, get_context
from app.runtime_settings.cache import RuntimeSettingsCache


class BillingContext(CoreContext, Protocol):
    runtime: RuntimeSettingsCache
    budgets: Budgets


BillingContextDep = Annotated[BillingContext, Depends(get_context)]
