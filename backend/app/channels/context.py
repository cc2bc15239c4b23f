"""What the channel routes use of the app's context (see `app.core.deps`)."""

from __future__ import annotations

from typing import Annotated, Protocol

from fastapi import Depends

from app.channels.admin import ChannelAdmin
from app.core.deps import CoreContext, get_context


class ChannelsContext(CoreContext, Protocol):
    channel_admin: ChannelAdmin


ChannelsContextDep = Annotated[ChannelsContext, Depends(get_context)]
