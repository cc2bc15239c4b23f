"""Conversations and their messages: create, list, read, edit, delete, import. Owner-scoped: a
conversation that is not the caller's is "not found", whatever the verb."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from sqlalchemy import Select, delete, exists, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.agents import service as agent_service
from app.conversations.schemas import (
    AgentBrief,
    ContextUpdate,
    ConversationCreate,
    ConversationDetail,
    ConversationExport,
    ConversationRead,
    ConversationUpdate,
    MessagePage,
    MessageRead,
)
from app.core.db import get_or_404
from app.core.errors import NotFoundError
from app.core.ids import INT32_MAX
from app.core.pagination import PageParams, like_pattern, paginate
from app.models import Agent, Conversation, Message, User
from app.models.base import utcnow

MAX_MESSAGE_PAGE = 200
DETAIL_MESSAGES = 50


def _not_found() -> NotFoundError:
    return NotFoundError("Conversation not found", code="conversation_not_found")


async def get_for_user(db: AsyncSession, user_id: int, conversation_id: int) -> Conversation:
    conversation = await db.get(Conversation, conversation_id)
    if conversation is None or conversation.user_id != user_id:
        raise _not_found()
    return conversation


async def get_any(db: AsyncSession, conversation_id: int) -> Conversation:
    return await get_or_404(db, Conversation, conversation_id, "Conversation")


async def create(
    db: AsyncSession, user: User, body: ConversationCreate, default_model: str
) -> Conversation:
    if body.agent_id is not None:
        agent: Agent | None = await agent_service.get_enabled(db, body.agent_id, user.id)
    else:
        agent = await agent_service.default_agent(db)
    conversation = Conversation(
        user_id=user.id,
        agent_id=agent.id if agent else None,
        title=body.title or "",
        title_source="user" if body.title else "auto",
        model=body.model or (agent.default_model if agent else None) or default_model or None,
        system_prompt=agent.system_prompt if agent else "",
        preset_messages=list(agent.preset_messages) if agent else [],
        params=dict(agent.params) if agent else {},
    )
    db.add(conversation)
    await db.flush()
    return conversation


SelectT = TypeVar("SelectT", bound=Select[*tuple[Any, ...]])


def _search(query: SelectT, text: str | None) -> SelectT:
    if not text:
        return query
    pattern = like_pattern(text)
    in_content = exists().where(
        Message.conversation_id == Conversation.id, Message.content.ilike(pattern, escape="\\")
    )
    return query.where(or_(Conversation.title.ilike(pattern, escape="\\"), in_content))


async def list_for_user(
    db: AsyncSession,
    user_id: int,
    page: PageParams,
    *,
    query: str | None,
    archived: bool | None,
) -> tuple[Sequence[Conversation], int]:
    """Pinned first, then the most recently active."""
    stmt = select(Conversation).where(Conversation.user_id == user_id)
    if archived is not None:
        stmt = stmt.where(Conversation.archived == archived)
    stmt = _search(stmt, query).order_by(
        Conversation.pinned.desc(), Conversation.last_message_at.desc(), Conversation.id.desc()
    )
    return await paginate(db, stmt, page)


async def admin_list(
    db: AsyncSession, page: PageParams, *, query: str | None, user_id: int | None
) -> tuple[list[dict[str, Any]], int]:
    stmt = select(Conversation, User.username).join(User, User.id == Conversation.user_id)
    if user_id is not None:
        stmt = stmt.where(Conversation.user_id == user_id)
    stmt = _search(stmt, query).order_by(
        Conversation.last_message_at.desc(), Conversation.id.desc()
    )
    total = await db.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
    rows = (await db.execute(stmt.offset(page.offset).limit(page.page_size))).all()
    items = [
        {
            **{c.key: getattr(conversation, c.key) for c in Conversation.__table__.columns},
            "username": username,
        }
        for conversation, username in rows
    ]
    return items, total


async def messages_page(
    db: AsyncSession, conversation_id: int, *, before: int | None, limit: int
) -> tuple[list[Message], int | None]:
    """Up to `limit` messages older than `before` (the newest if None), oldest first, and the
    cursor for the page before them (None when there is none)."""
    stmt = select(Message).where(Message.conversation_id == conversation_id)
    if before is not None:
        stmt = stmt.where(Message.id < before)
    rows = list((await db.scalars(stmt.order_by(Message.id.desc()).limit(limit + 1))).all())
    more = len(rows) > limit
    rows = rows[:limit]
    rows.reverse()
    return rows, (rows[0].id if more and rows else None)


async def message_page(
    db: AsyncSession, conversation_id: int, *, before: int | None, limit: int
) -> MessagePage:
    rows, cursor = await messages_page(db, conversation_id, before=before, limit=limit)
    return MessagePage(items=[MessageRead.model_validate(m) for m in rows], next_cursor=cursor)


async def detail(
    db: AsyncSession, conversation: Conversation, running_reply: str | None
) -> ConversationDetail:
    """The conversation with its newest messages, its agent's greetings and any running reply."""
    messages, cursor = await messages_page(db, conversation.id, before=None, limit=DETAIL_MESSAGES)
    agent = await db.get(Agent, conversation.agent_id) if conversation.agent_id else None
    return ConversationDetail(
        **ConversationRead.model_validate(conversation).model_dump(),
        agent=AgentBrief.model_validate(agent) if agent else None,
        messages=[MessageRead.model_validate(m) for m in messages],
        messages_cursor=cursor,
        running_reply=running_reply,
    )


async def recent_messages(db: AsyncSession, conversation_id: int, limit: int) -> list[Message]:
    rows, _ = await messages_page(db, conversation_id, before=None, limit=limit)
    return rows


async def all_messages(db: AsyncSession, conversation_id: int) -> Sequence[Message]:
    stmt = select(Message).where(Message.conversation_id == conversation_id).order_by(Message.id)
    return (await db.scalars(stmt)).all()


async def update_conversation(
    db: AsyncSession, conversation: Conversation, body: ConversationUpdate
) -> Conversation:
    if body.title is not None:
        conversation.title = body.title
        conversation.title_source = "user"
    if body.pinned is not None:
        conversation.pinned = body.pinned
    if body.archived is not None:
        conversation.archived = body.archived
    await db.flush()
    await db.refresh(conversation)
    return conversation


async def update_context(
    db: AsyncSession, conversation: Conversation, body: ContextUpdate
) -> Conversation:
    fields = body.model_fields_set
    if body.system_prompt is not None:
        conversation.system_prompt = body.system_prompt
    if body.preset_messages is not None:
        conversation.preset_messages = [m.model_dump() for m in body.preset_messages]
    if "model" in fields:
        conversation.model = body.model
    if body.params is not None:
        conversation.params = body.params.upstream()
    await db.flush()
    await db.refresh(conversation)
    return conversation


async def delete_conversation(db: AsyncSession, conversation: Conversation) -> None:
    await db.execute(delete(Message).where(Message.conversation_id == conversation.id))
    await db.delete(conversation)
    await db.flush()


async def add_user_message(
    db: AsyncSession, conversation: Conversation, content: str, model: str
) -> Message:
    now = utcnow()
    message = Message(
        conversation_id=conversation.id, role="user", content=content, model=model, created_at=now
    )
    db.add(message)
    await db.execute(
        update(Conversation)
        .where(Conversation.id == conversation.id)
        .values(
            message_count=Conversation.message_count + 1,
            last_message_at=now,
            updated_at=now,
            model=model,
        )
    )
    await db.flush()
    return message


async def drop_messages_after(db: AsyncSession, conversation_id: int, message_id: int) -> None:
    """Remove every message after `message_id` (an edit or a regenerate continues from there)."""
    await db.execute(
        delete(Message).where(Message.conversation_id == conversation_id, Message.id > message_id)
    )
    count = await db.scalar(select(func.count()).where(Message.conversation_id == conversation_id))
    await db.execute(
        update(Conversation)
        .where(Conversation.id == conversation_id)
        .values(message_count=count or 0, updated_at=utcnow())
    )


async def get_message(db: AsyncSession, conversation_id: int, message_id: int) -> Message:
    message = await db.get(Message, message_id)
    if message is None or message.conversation_id != conversation_id:
        raise NotFoundError("Message not found", code="message_not_found")
    return message


async def last_message(db: AsyncSession, conversation_id: int) -> Message | None:
    stmt = (
        select(Message)
        .where(Message.conversation_id == conversation_id)
        .order_by(Message.id.desc())
        .limit(1)
    )
    return await db.scalar(stmt)


async def import_conversation(
    db: AsyncSession, user: User, data: ConversationExport
) -> Conversation:
    now = utcnow()
    conversation = Conversation(
        user_id=user.id,
        title=data.title or "Imported conversation",
        title_source="user",
        model=data.model,
        system_prompt=data.system_prompt,
        preset_messages=[m.model_dump() for m in data.preset_messages],
        params=data.params.upstream(),
        created_at=data.created_at or now,
        message_count=len(data.messages),
        total_tokens=min(sum(m.total_tokens for m in data.messages), INT32_MAX),
        last_message_at=(data.messages[-1].created_at if data.messages else None) or now,
    )
    db.add(conversation)
    await db.flush()
    db.add_all(
        Message(
            conversation_id=conversation.id,
            role=m.role,
            content=m.content,
            reasoning=m.reasoning,
            status=m.status,
            model=m.model,
            prompt_tokens=m.prompt_tokens,
            completion_tokens=m.completion_tokens,
            reasoning_tokens=m.reasoning_tokens,
            total_tokens=m.total_tokens,
            created_at=m.created_at or now,
        )
        for m in data.messages
    )
    await db.flush()
    return conversation
