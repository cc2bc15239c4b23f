"""Finishing what a dead server left running (see `logs.journal`, `core.instances`).

Each call it was running becomes a call-log row ended `interrupted` (what was known when it was
last recorded: model, channel, tokens so far); each chat reply becomes its assistant message,
marked `interrupted`, with the text and reasoning it had — all in one transaction with removing
those entries, so nothing is finished twice: when several live servers find the same dead one,
the one that removes the entries writes the rows, and the others roll theirs back. Runs at start
and then every few seconds.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.core.instances import InstanceRegistry
from app.logs.writer import CallLogWriter
from app.models import CallInFlight, Conversation, Message, ServerInstance
from app.models.base import utcnow

logger = logging.getLogger(__name__)
IN_FLIGHT = cast(Table, CallInFlight.__table__)
MESSAGES = cast(Table, Message.__table__)
CALL_ERROR = "The server stopped while this call ran"
REPLY_ERROR = "The server stopped while this reply was generated"
REPLY_ERROR_CODE = "server_interrupted"
INTERRUPTED_STATUS = 500


class AlreadyRecoveredError(Exception):
    """Another live server finished these calls first (it took their entries away)."""


def interrupted_row(recorded: dict[str, Any]) -> dict[str, Any]:
    row = dict(recorded)
    row["created_at"] = datetime.fromisoformat(row["created_at"])
    row.update(
        end_reason="interrupted",
        success=False,
        status_code=INTERRUPTED_STATUS,
        error_message=CALL_ERROR,
    )
    return row


async def _store_reply(conn: AsyncConnection, reply: dict[str, Any], row: dict[str, Any]) -> None:
    conversation_id = reply.get("conversation_id")
    exists = await conn.scalar(select(Conversation.id).where(Conversation.id == conversation_id))
    if exists is None:  # deleted since
        return
    now = utcnow()
    await conn.execute(
        MESSAGES.insert().values(
            conversation_id=conversation_id,
            role="assistant",
            content=reply.get("content") or "",
            reasoning=reply.get("reasoning") or None,
            status="interrupted",
            error=REPLY_ERROR,
            error_code=REPLY_ERROR_CODE,
            model=reply.get("model"),
            channel_id=row.get("channel_id"),
            request_id=reply.get("request_id"),
            prompt_tokens=row.get("prompt_tokens") or 0,
            completion_tokens=row.get("completion_tokens") or 0,
            reasoning_tokens=row.get("reasoning_tokens") or 0,
            total_tokens=row.get("total_tokens") or 0,
            usage_source=row.get("usage_source") or "estimated",
            ttft_ms=row.get("ttft_ms"),
            duration_ms=row.get("duration_ms"),
            created_at=now,
        )
    )
    await conn.execute(
        update(Conversation)
        .where(Conversation.id == conversation_id)
        .values(
            message_count=Conversation.message_count + 1,
            total_tokens=Conversation.total_tokens + (row.get("total_tokens") or 0),
            last_message_at=now,
            updated_at=now,
        )
    )


async def recover(engine: AsyncEngine, writer: CallLogWriter, registry: InstanceRegistry) -> int:
    """Finish the calls of every dead server (and of none still running). Returns how many."""
    dead = await registry.dead()
    async with engine.connect() as conn:
        registered = select(ServerInstance.id)
        entries = (
            (
                await conn.execute(
                    select(IN_FLIGHT).where(
                        or_(
                            IN_FLIGHT.c.instance_id.in_(dead),
                            IN_FLIGHT.c.instance_id.not_in(registered),
                        )
                    )
                )
            )
            .mappings()
            .all()
        )
    if entries:
        rows = [interrupted_row(entry["row"]) for entry in entries]
        ids = [entry["id"] for entry in entries]

        async def finish(conn: AsyncConnection) -> None:
            removed = await conn.execute(IN_FLIGHT.delete().where(IN_FLIGHT.c.id.in_(ids)))
            if removed.rowcount != len(ids):
                raise AlreadyRecoveredError  # by another live server: roll all of this back
            for entry, row in zip(entries, rows, strict=True):
                if entry["reply"]:
                    await _store_reply(conn, entry["reply"], row)

        try:
            await writer.write_recovered(rows, finish)
        except AlreadyRecoveredError:
            return 0
        logger.warning(
            "Recorded %d calls left running by a server that stopped as interrupted", len(rows)
        )
    await registry.forget(dead)
    return len(entries)
