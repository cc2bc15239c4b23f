"""What the API-key routes use of the app's context (see `app.core.deps`)."""

from __future__ import annotations

from typing import Annotated, Protocol

from fastapi import Depends

from app.core.deps import CoreContext, get_context


class KeysContext(CoreContext, Protocol):
    def credentials_changed(self) -> None:
        """Keys were revoked: forget cached key lookups on every process."""


KeysContextDep = Annotated[KeysContext, Depends(get_context)]
