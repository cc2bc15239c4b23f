"""Conversation titles: one short model call after the first reply; the first words if it fails.

The call goes through the gateway like any other (routing, failover, the call log) but does not
count against the user's own limits: the user did not ask for it.
"""

from __future__ import annotations

import asyncio
import logging
import re

from sqlalchemy import update
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.conversations.reply import ReplySpec
from app.core.errors import AppError
from app.gateway.accounting import CallRecord
from app.gateway.caller import Caller
from app.gateway.calls import ModelCalls
from app.gateway.request import ModelRequest
from app.gateway.think import split_complete
from app.gateway.upstream import UpstreamError
from app.models import Conversation
from app.ratelimit.admission import CallerLimits

logger = logging.getLogger(__name__)
MAX_TITLE_CHARS = 40
FALLBACK_CHARS = 30
UNCOUNTED = CallerLimits(user_rpm=0, user_streams=0)
INSTRUCTION = (
    "Write a title for the conversation below: at most 8 words, or 16 characters for Chinese, "
    "Japanese or Korean, in the language the user writes in. No quotes, no final punctuation. "
    "Reply with the title only."
)
_TRIM = " \t\r\n\"'“”‘’「」《》『』`*#.。!！?？:：,，;；"


def clean(text: str) -> str:
    """One line, no wrapping quotes or markup, at most MAX_TITLE_CHARS characters."""
    _, text = split_complete(text)
    line = next((part for part in text.splitlines() if part.strip()), "")
    line = re.sub(r"^(title|标题)\s*[:：]\s*", "", line.strip(), flags=re.IGNORECASE)
    line = re.sub(r"[*`#]+", "", line)  # Markdown emphasis, code and heading marks
    line = re.sub(r"\s+", " ", line).strip(_TRIM)
    return line[:MAX_TITLE_CHARS].rstrip()


def fallback(question: str) -> str:
    """The question's first words, when no model could name the conversation."""
    text = re.sub(r"\s+", " ", question).strip()
    if len(text) <= FALLBACK_CHARS:
        return text or "New chat"
    cut = text[:FALLBACK_CHARS]
    if " " in cut[FALLBACK_CHARS // 2 :]:
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip(_TRIM) + "…"


async def generate(
    calls: ModelCalls,
    *,
    model: str,
    question: str,
    answer: str,
    user_id: int,
    request_id: str,
    client_ip: str | None,
) -> str:
    """A title from the model; raises what the gateway raises, or ValueError for an empty one."""
    messages = [
        {"role": "system", "content": INSTRUCTION},
        {"role": "user", "content": f"User: {question[:1500]}\n\nAssistant: {answer[:1500]}"},
    ]
    body = {"model": model, "messages": messages, "stream": False, "max_tokens": 40}
    request = ModelRequest(
        body=body, model=model, stream=False, include_usage=False, messages=messages
    )
    call = calls.new(
        CallRecord(
            request_id=f"{request_id}-title",
            source="chat",
            user_id=user_id,
            api_key_id=None,
            client_ip=client_ip,
            requested_model=model,
            messages=messages,
        ),
        cancel_note="title generation was cancelled",
    )
    try:
        await call.start(request, Caller(user_id=user_id, limits=UNCOUNTED))
        call.answer()
    finally:
        call.close()
    title = clean(call.text)
    if not title:
        raise ValueError("the model gave an empty title")
    return title


async def name_conversation(
    calls: ModelCalls,
    sessionmaker: async_sessionmaker[AsyncSession],
    spec: ReplySpec,
    answer: str,
    *,
    model: str,
    seconds: float,
) -> None:
    """Give the conversation of a first reply its title: the model's, or the question's first
    words; never over a title the user set meanwhile."""
    question = spec.name_after or ""
    try:
        async with asyncio.timeout(seconds):
            title = await generate(
                calls,
                model=model,
                question=question,
                answer=answer,
                user_id=spec.user_id,
                request_id=spec.request_id,
                client_ip=spec.client_ip,
            )
    except (AppError, UpstreamError, TimeoutError, ValueError) as exc:
        logger.info("Naming conversation %s by its first words: %s", spec.conversation_id, exc)
        title = fallback(question)
    try:
        async with sessionmaker() as db:
            await db.execute(
                update(Conversation)
                .where(
                    Conversation.id == spec.conversation_id,
                    Conversation.title_source == "auto",
                    Conversation.title == "",
                )
                .values(title=title)
            )
            await db.commit()
    except (OperationalError, OSError) as exc:
        logger.warning(
            "Could not store the title of conversation %s: %s", spec.conversation_id, exc
        )
