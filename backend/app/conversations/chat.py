"""Starting a reply: send a message, regenerate the last answer, or edit a message and go on.

Each one, in one short transaction before anything streams: checks the conversation is the
caller's, picks and checks the model, claims the conversation (409 if a reply is running), makes
its change (stores the user message, drops what an edit or a regenerate replaces), builds the
context, commits — then launches the reply and returns its event stream.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from sqlalchemy import delete, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.auth.verification import ensure_may_chat
from app.conversations import service
from app.conversations.prompt import build_context
from app.conversations.replies import ReplyManager
from app.conversations.reply import ReplySpec
from app.conversations.schemas import ChatModels, MessageRead
from app.core.config import ChatSettings
from app.core.errors import UnprocessableError
from app.gateway.cache import ChannelCache
from app.models import Conversation, Message, User
from app.ratelimit.admission import CallerLimits
from app.runtime_settings.cache import RuntimeSettingsCache

# Makes the reply's change inside the transaction; returns the stored user message, if any.
Change = Callable[[AsyncSession, Conversation, str], Awaitable[Message | None]]


class ChatTurns:
    def __init__(
        self,
        *,
        sessionmaker: async_sessionmaker[AsyncSession],
        replies: ReplyManager,
        registry: ChannelCache,
        runtime: RuntimeSettingsCache,
        settings: ChatSettings,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._replies = replies
        self._registry = registry
        self._runtime = runtime
        self._settings = settings

    async def available_models(self) -> list[str]:
        return sorted((await self._registry.snapshot()).by_model)

    async def models(self) -> ChatModels:
        items = await self.available_models()
        default = self._runtime.current.default_model
        return ChatModels(
            items=items, default=default if default in items else next(iter(items), None)
        )

    async def _model(self, wanted: str | None) -> str:
        models = await self.available_models()
        model = wanted or self._runtime.current.default_model or (models[0] if models else "")
        if not models:
            raise UnprocessableError(
                "No model is available yet: an admin has to add a channel first",
                code="no_models",
                param="model",
            )
        if model not in models:
            raise UnprocessableError(
                f"The model '{model}' does not exist or no channel serves it",
                code="model_not_found",
                param="model",
            )
        return model

    async def send(
        self,
        user: User,
        conversation_id: int,
        content: str,
        model: str | None,
        *,
        request_id: str,
        client_ip: str | None,
    ) -> AsyncIterator[bytes]:
        async def add(db: AsyncSession, conversation: Conversation, chosen: str) -> Message:
            return await service.add_user_message(db, conversation, content, chosen)

        return await self._start(user, conversation_id, model, add, request_id, client_ip)

    async def regenerate(
        self,
        user: User,
        conversation_id: int,
        model: str | None,
        *,
        request_id: str,
        client_ip: str | None,
    ) -> AsyncIterator[bytes]:
        async def drop_last_answer(
            db: AsyncSession, conversation: Conversation, chosen: str
        ) -> None:
            last = await service.last_message(db, conversation.id)
            if last is None:
                raise UnprocessableError(
                    "There is no message to answer yet", code="nothing_to_regenerate"
                )
            if last.role == "assistant":
                await db.execute(delete(Message).where(Message.id == last.id))
                await _count_removed(db, conversation.id, 1, chosen)
            else:
                await _set_model(db, conversation.id, chosen)
            return None

        return await self._start(
            user, conversation_id, model, drop_last_answer, request_id, client_ip
        )

    async def edit(
        self,
        user: User,
        conversation_id: int,
        message_id: int,
        content: str,
        model: str | None,
        *,
        request_id: str,
        client_ip: str | None,
    ) -> AsyncIterator[bytes]:
        async def rewrite(db: AsyncSession, conversation: Conversation, chosen: str) -> Message:
            message = await service.get_message(db, conversation.id, message_id)
            if message.role != "user":
                raise UnprocessableError(
                    "Only your own messages can be edited", code="not_a_user_message"
                )
            message.content = content
            message.model = chosen
            await service.drop_messages_after(db, conversation.id, message.id)
            await _set_model(db, conversation.id, chosen)
            await db.flush()
            return message

        return await self._start(user, conversation_id, model, rewrite, request_id, client_ip)

    async def delete(self, user_id: int | None, conversation_id: int) -> None:
        """Delete a conversation (the user's own, or any when `user_id` is None), stopping its
        running reply first."""
        async with self._sessionmaker() as db:
            if user_id is None:
                conversation = await service.get_any(db, conversation_id)
            else:
                conversation = await service.get_for_user(db, user_id, conversation_id)
            await self._replies.stop(conversation.id)
            await service.delete_conversation(db, conversation)
            await db.commit()

    async def _start(
        self,
        user: User,
        conversation_id: int,
        wanted_model: str | None,
        change: Change,
        request_id: str,
        client_ip: str | None,
    ) -> AsyncIterator[bytes]:
        ensure_may_chat(self._runtime.current, user)
        async with self._sessionmaker() as db:
            conversation = await service.get_for_user(db, user.id, conversation_id)
            model = await self._model(wanted_model or conversation.model)
            held = conversation.id  # (a rollback expires the object's attributes)
            reply_id = await self._replies.claim(held)
            try:
                user_message = await change(db, conversation, model)
                await db.commit()
                history = await service.recent_messages(db, held, self._settings.history_messages)
            except BaseException:
                await db.rollback()
                await self._replies.unclaim(held, reply_id)
                raise
        context = build_context(conversation, history, self._runtime.current.chat_context_tokens)
        spec = ReplySpec(
            conversation_id=conversation.id,
            user_id=user.id,
            limits=CallerLimits.of(user),
            model=model,
            messages=context,
            params=dict(conversation.params),
            request_id=request_id,
            client_ip=client_ip,
            user_message=_message_json(user_message),
            name_after=_naming_question(conversation, history),
        )
        return self._replies.launch(reply_id, spec)


def _message_json(message: Message | None) -> dict[str, Any] | None:
    if message is None:
        return None
    return MessageRead.model_validate(message).model_dump(mode="json")


def _naming_question(conversation: Conversation, history: list[Message]) -> str | None:
    """The first question, while the conversation still waits for a generated title."""
    if conversation.title or conversation.title_source != "auto":
        return None
    return next((m.content for m in history if m.role == "user"), None)


async def _set_model(db: AsyncSession, conversation_id: int, model: str) -> None:
    await db.execute(
        update(Conversation).where(Conversation.id == conversation_id).values(model=model)
    )


async def _count_removed(db: AsyncSession, conversation_id: int, removed: int, model: str) -> None:
    await db.execute(
        update(Conversation)
        .where(Conversation.id == conversation_id)
        .values(message_count=Conversation.message_count - removed, model=model)
    )
