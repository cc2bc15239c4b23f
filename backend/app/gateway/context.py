"""What the `/v1` endpoints use of the app's context (see `app.core.deps`)."""

from __future__ import annotations

from typing import Annotated, Protocol

from fastapi import Depends

from app.core.deps import CoreContext, get_context
from app.gateway.auth import ApiKeyCache
from app.gateway.calls import ModelCalls
from app.gateway.responses_store import ResponseStore
from app.gateway.service import Gateway
from app.ipfilter.guard import ClientGuard
from app.runtime_settings.cache import RuntimeSettingsCache


class GatewayContext(CoreContext, Protocol):
    api_key_cache: ApiKeyCache
    calls: ModelCalls
    responses: ResponseStore
    gateway: Gateway
    runtime: RuntimeSettingsCache
    guard: ClientGuard


GatewayContextDep = Annotated[GatewayContext, Depends(get_context)]
