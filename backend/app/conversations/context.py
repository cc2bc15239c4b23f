"""What the web-chat routes use of the app's context (see `app.core.deps`)."""

from __future__ import annotations

from typing import Annotated, Protocol

from fastapi import Depends

from app.conversations.chat import ChatTurns
from app.conversations.replies import ReplyManager
from app.core.deps import CoreContext, get_context
from app.runtime_settings.cache import RuntimeSettingsCache


class ChatContext(CoreContext, Protocol):
    chat: ChatTurns
    replies: ReplyManager
    runtime: RuntimeSettingsCache


ChatContextDep = Annotated[ChatContext, Depends(get_context)]
