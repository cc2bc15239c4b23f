"""What the IP-rule routes use of the app's context (see `app.core.deps`)."""

from __future__ import annotations

from typing import Annotated, Protocol

from fastapi import Depends

from app.core.deps import CoreContext, get_context


class IPFilterContext(CoreContext, Protocol):
    async def ip_rules_changed(self) -> None:
        """Rules were edited: reload them on every process."""


IPFilterContextDep = Annotated[IPFilterContext, Depends(get_context)]
