"""The web chat API: `/api/conversations` (the caller's own), `/api/admin/conversations`, and
`/api/chat/models` (what the chat may use)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Annotated, Literal
from urllib.parse import quote

import anyio
from fastapi import APIRouter, Depends, Header, Query, Response, status
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from app.access.dependencies import CurrentUser, require_admin
from app.conversations import export, service
from app.conversations.context import ChatContextDep
from app.conversations.replay import parse_event_id
from app.conversations.schemas import (
    AdminConversationRead,
    ChatModels,
    ContextUpdate,
    ConversationCreate,
    ConversationDetail,
    ConversationExport,
    ConversationRead,
    ConversationSummary,
    ConversationUpdate,
    EditMessage,
    MessagePage,
    Regenerate,
    SendMessage,
    StopResult,
)
from app.conversations.stream_events import EVENT_STREAM
from app.core.deps import ClientIP, RequestId, SessionDep
from app.core.ids import INT64_MAX, BigRowId, RowId, RowIdFilter
from app.core.pagination import Page, PageDep

router = APIRouter(prefix="/api/conversations", tags=["conversations"])
admin_router = APIRouter(
    prefix="/api/admin/conversations",
    tags=["admin-conversations"],
    dependencies=[Depends(require_admin)],
)
models_router = APIRouter(prefix="/api/chat", tags=["chat"])


class EventStream(StreamingResponse):
    """An event stream that ends as soon as its client goes away.

    Without this a follower would notice only at its next write (a keep-alive comes every
    `CHAT_HEARTBEAT_SECONDS`), holding the connection open — and a graceful shutdown — until then.
    The reply itself is not affected either way: it runs on its own.
    """

    media_type = "text/event-stream"

    def __init__(self, frames: AsyncIterator[bytes], status_code: int = 200) -> None:
        super().__init__(
            frames,
            status_code=status_code,
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async with anyio.create_task_group() as group:

            async def stream() -> None:
                with contextlib.suppress(OSError):  # the client left while we wrote
                    await self.stream_response(send)
                group.cancel_scope.cancel()

            group.start_soon(stream)
            await self.listen_for_disconnect(receive)
            group.cancel_scope.cancel()


@models_router.get("/models")
async def chat_models(_user: CurrentUser, ctx: ChatContextDep) -> ChatModels:
    """The models the chat can use now, and the default."""
    return await ctx.chat.models()


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_conversation(
    body: ConversationCreate, user: CurrentUser, ctx: ChatContextDep, db: SessionDep
) -> ConversationRead:
    """New chat (no `agent_id`: the default agent)."""
    conversation = await service.create(db, user, body, ctx.runtime.current.default_model)
    return ConversationRead.model_validate(conversation)


@router.get("")
async def list_conversations(
    user: CurrentUser,
    db: SessionDep,
    page: PageDep,
    q: Annotated[str | None, Query(max_length=200, description="In titles and messages")] = None,
    archived: Annotated[bool | None, Query(description="Omit for both")] = False,
) -> Page[ConversationSummary]:
    """Yours, pinned first then most recent; `q` searches titles and message text."""
    rows, total = await service.list_for_user(db, user.id, page, query=q, archived=archived)
    return page.result([ConversationSummary.model_validate(c) for c in rows], total)


@router.post("/import", status_code=status.HTTP_201_CREATED)
async def import_conversation(
    body: ConversationExport, user: CurrentUser, db: SessionDep
) -> ConversationRead:
    return ConversationRead.model_validate(await service.import_conversation(db, user, body))


@router.get("/{conversation_id}")
async def get_conversation(
    conversation_id: RowId, user: CurrentUser, ctx: ChatContextDep, db: SessionDep
) -> ConversationDetail:
    """With the newest 50 messages, `messages_cursor`, the agent's greetings and starters,
    `running_reply`."""
    conversation = await service.get_for_user(db, user.id, conversation_id)
    return await service.detail(db, conversation, await ctx.replies.running(conversation.id))


@router.patch("/{conversation_id}")
async def update_conversation(
    conversation_id: RowId, body: ConversationUpdate, user: CurrentUser, db: SessionDep
) -> ConversationRead:
    """A title you set is never replaced by a generated one."""
    conversation = await service.get_for_user(db, user.id, conversation_id)
    return ConversationRead.model_validate(
        await service.update_conversation(db, conversation, body)
    )


@router.put("/{conversation_id}/context")
async def update_context(
    conversation_id: RowId, body: ContextUpdate, user: CurrentUser, db: SessionDep
) -> ConversationRead:
    """The context of later replies."""
    conversation = await service.get_for_user(db, user.id, conversation_id)
    return ConversationRead.model_validate(await service.update_context(db, conversation, body))


@router.delete("/{conversation_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_conversation(
    conversation_id: RowId, user: CurrentUser, ctx: ChatContextDep
) -> None:
    """Stops a running reply, then deletes."""
    await ctx.chat.delete(user.id, conversation_id)


@router.get("/{conversation_id}/messages")
async def list_messages(
    conversation_id: RowId,
    user: CurrentUser,
    db: SessionDep,
    before: Annotated[int | None, Query(ge=1, le=INT64_MAX, description="A `next_cursor`")] = None,
    limit: Annotated[int, Query(ge=1, le=service.MAX_MESSAGE_PAGE)] = 50,
) -> MessagePage:
    """Older messages (`next_cursor`)."""
    conversation = await service.get_for_user(db, user.id, conversation_id)
    return await service.message_page(db, conversation.id, before=before, limit=limit)


@router.post("/{conversation_id}/messages", response_class=EventStream, responses=EVENT_STREAM)
async def send_message(
    conversation_id: RowId,
    body: SendMessage,
    user: CurrentUser,
    ctx: ChatContextDep,
    request_id: RequestId,
    client_ip: ClientIP,
) -> EventStream:
    """Send; answers with an event stream."""
    frames = await ctx.chat.send(
        user,
        conversation_id,
        body.content,
        body.model,
        request_id=request_id,
        client_ip=client_ip,
    )
    return EventStream(frames)


@router.post(
    "/{conversation_id}/messages/{message_id}/edit",
    response_class=EventStream,
    responses=EVENT_STREAM,
)
async def edit_message(
    conversation_id: RowId,
    message_id: BigRowId,
    body: EditMessage,
    user: CurrentUser,
    ctx: ChatContextDep,
    request_id: RequestId,
    client_ip: ClientIP,
) -> EventStream:
    """Rewrite one of your messages; everything after it is removed and a new reply starts (event
    stream)."""
    frames = await ctx.chat.edit(
        user,
        conversation_id,
        message_id,
        body.content,
        body.model,
        request_id=request_id,
        client_ip=client_ip,
    )
    return EventStream(frames)


@router.post("/{conversation_id}/regenerate", response_class=EventStream, responses=EVENT_STREAM)
async def regenerate(
    conversation_id: RowId,
    user: CurrentUser,
    ctx: ChatContextDep,
    request_id: RequestId,
    client_ip: ClientIP,
    body: Regenerate | None = None,
) -> EventStream:
    """Replace the last answer (event stream)."""
    frames = await ctx.chat.regenerate(
        user,
        conversation_id,
        body.model if body else None,
        request_id=request_id,
        client_ip=client_ip,
    )
    return EventStream(frames)


@router.get(
    "/{conversation_id}/stream",
    response_class=EventStream,
    responses={**EVENT_STREAM, 204: {"description": "No reply to attach to"}},
)
async def resume_stream(
    conversation_id: RowId,
    user: CurrentUser,
    ctx: ChatContextDep,
    db: SessionDep,
    last_event_id: Annotated[str | None, Header(max_length=100)] = None,
    after: Annotated[
        str | None, Query(max_length=100, description="Same as Last-Event-ID (for EventSource)")
    ] = None,
) -> Response:
    """Re-attach to the running (or just finished) reply; 204 if there is none."""
    conversation = await service.get_for_user(db, user.id, conversation_id)
    frames = await ctx.replies.attach(conversation.id, parse_event_id(last_event_id or after))
    if frames is None:
        return Response(status_code=status.HTTP_204_NO_CONTENT)
    return EventStream(frames)


@router.post("/{conversation_id}/stop")
async def stop_reply(
    conversation_id: RowId, user: CurrentUser, ctx: ChatContextDep, db: SessionDep
) -> StopResult:
    """Stop it; answers `{stopped, reply_id, status}` once it has ended."""
    conversation = await service.get_for_user(db, user.id, conversation_id)
    reply_id, ended = await ctx.replies.stop(conversation.id)
    return StopResult(stopped=reply_id is not None, reply_id=reply_id, status=ended)


@router.get(
    "/{conversation_id}/export",
    responses={200: {"content": {"text/markdown": {}, "application/json": {}}}},
)
async def export_conversation(
    conversation_id: RowId,
    user: CurrentUser,
    db: SessionDep,
    format: Annotated[Literal["markdown", "json"], Query()] = "markdown",
) -> Response:
    """Download; the JSON imports again with `POST /api/conversations/import`."""
    conversation = await service.get_for_user(db, user.id, conversation_id)
    messages = await service.all_messages(db, conversation.id)
    if format == "json":
        body = export.to_export(conversation, messages).model_dump_json(indent=2)
        media, extension = "application/json", "json"
    else:
        body = export.to_markdown(conversation, messages)
        media, extension = "text/markdown; charset=utf-8", "md"
    name = export.filename(conversation, extension)
    title = quote(f"{conversation.title or 'conversation'}.{extension}")
    disposition = f"attachment; filename=\"{name}\"; filename*=UTF-8''{title}"
    return Response(body, media_type=media, headers={"Content-Disposition": disposition})


@admin_router.get("")
async def admin_list_conversations(
    db: SessionDep,
    page: PageDep,
    q: Annotated[str | None, Query(max_length=200)] = None,
    user_id: RowIdFilter = None,
) -> Page[AdminConversationRead]:
    """Admins: every conversation with its owner, messages, tokens."""
    items, total = await service.admin_list(db, page, query=q, user_id=user_id)
    return page.result([AdminConversationRead.model_validate(i) for i in items], total)


@admin_router.get("/{conversation_id}")
async def admin_get_conversation(
    conversation_id: RowId, ctx: ChatContextDep, db: SessionDep
) -> ConversationDetail:
    conversation = await service.get_any(db, conversation_id)
    return await service.detail(db, conversation, await ctx.replies.running(conversation.id))


@admin_router.get("/{conversation_id}/messages")
async def admin_list_messages(
    conversation_id: RowId,
    db: SessionDep,
    before: Annotated[int | None, Query(ge=1, le=INT64_MAX)] = None,
    limit: Annotated[int, Query(ge=1, le=service.MAX_MESSAGE_PAGE)] = 50,
) -> MessagePage:
    conversation = await service.get_any(db, conversation_id)
    return await service.message_page(db, conversation.id, before=before, limit=limit)


@admin_router.delete("/{conversation_id}", status_code=status.HTTP_204_NO_CONTENT)
async def admin_delete_conversation(conversation_id: RowId, ctx: ChatContextDep) -> None:
    await ctx.chat.delete(None, conversation_id)
