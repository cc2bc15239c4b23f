"""Storing a reply once it has ended: its assistant message and the conversation's counters."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.conversations.reply import Outcome, ReplySpec
from app.conversations.schemas import MessageRead
from app.gateway.calls import ModelCall
from app.gateway.usage import Usage
from app.models import Conversation, Message
from app.models.base import utcnow

logger = logging.getLogger(__name__)
STORE_RETRIES = (0.2, 0.5, 1.0, 2.0)


async def store_reply(
    sessionmaker: async_sessionmaker[AsyncSession],
    spec: ReplySpec,
    call: ModelCall,
    outcome: Outcome,
    usage: Usage,
) -> dict[str, Any] | None:
    """Write the assistant message and the conversation's counters, retrying a busy database."""
    error = outcome.error or {}
    record = call.record
    for delay in (*STORE_RETRIES, None):
        now = utcnow()
        message = Message(
            conversation_id=spec.conversation_id,
            role="assistant",
            content=call.text,
            reasoning=call.reasoning or None,
            status=outcome.status,
            error=error.get("message"),
            error_code=error.get("code"),
            model=spec.model,
            channel_id=record.channel_id,
            request_id=spec.request_id,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            reasoning_tokens=usage.reasoning_tokens,
            total_tokens=usage.total_tokens,
            usage_source=usage.source,
            ttft_ms=record.ttft_ms,
            reasoning_ms=outcome.reasoning_ms(),
            duration_ms=int((time.perf_counter() - record.started) * 1000),
            created_at=now,
        )
        try:
            async with sessionmaker() as db:
                db.add(message)
                await db.execute(
                    update(Conversation)
                    .where(Conversation.id == spec.conversation_id)
                    .values(
                        message_count=Conversation.message_count + 1,
                        total_tokens=Conversation.total_tokens + usage.total_tokens,
                        last_message_at=now,
                        updated_at=now,
                    )
                )
                await db.commit()
                return MessageRead.model_validate(message).model_dump(mode="json")
        except IntegrityError:
            logger.info("Conversation %s was deleted during its reply", spec.conversation_id)
            return None
        except (OperationalError, OSError) as exc:
            if delay is None:
                logger.error(
                    "Could not store the reply of conversation %s: %s",
                    spec.conversation_id,
                    exc,
                )
                return None
            await asyncio.sleep(delay)
    return None
