"""What the channel routes use of the app's context (see `app.core.deps`)."""

from __future__ import annotations

from typing import Annotated, Protocol

import aiohttp
from fastapi import Depends

from app.core.deps import CoreContext, get_context
from app.gateway.breaker import CircuitBreaker


class ChannelsContext(CoreContext, Protocol):
    breaker: CircuitBreaker
    http: aiohttp.ClientSession

    def allow_private_upstreams(self) -> bool: ...

    def channels_changed(self) -> None:
        """Channels were edited: reload them here at once, and on the other processes."""


ChannelsContextDep = Annotated[ChannelsContext, Depends(get_context)]
