"""A conversation as Markdown (to read or share) or JSON (to import again, here or elsewhere)."""

from __future__ import annotations

from collections.abc import Sequence

from app.conversations.schemas import ConversationExport, ExportedMessage
from app.models import Conversation, Message
from app.models.base import utcnow

ROLE_TITLES = {"user": "User", "assistant": "Assistant", "system": "System"}


def to_export(conversation: Conversation, messages: Sequence[Message]) -> ConversationExport:
    return ConversationExport.model_validate(
        {
            "title": conversation.title,
            "model": conversation.model,
            "system_prompt": conversation.system_prompt,
            "preset_messages": conversation.preset_messages,
            "params": conversation.params,
            "created_at": conversation.created_at,
            "exported_at": utcnow(),
            "messages": [
                ExportedMessage.model_validate(
                    {
                        "role": m.role,
                        "content": m.content,
                        "reasoning": m.reasoning,
                        "status": m.status,
                        "model": m.model,
                        "prompt_tokens": m.prompt_tokens,
                        "completion_tokens": m.completion_tokens,
                        "reasoning_tokens": m.reasoning_tokens,
                        "total_tokens": m.total_tokens,
                        "created_at": m.created_at,
                    }
                )
                for m in messages
                if m.role in ("user", "assistant")
            ],
        }
    )


def _quote(text: str) -> str:
    return "\n".join(f"> {line}" if line else ">" for line in text.splitlines())


def to_markdown(conversation: Conversation, messages: Sequence[Message]) -> str:
    title = conversation.title or "Conversation"
    lines = [f"# {title}", ""]
    facts = [f"Exported {utcnow():%Y-%m-%d %H:%M} UTC"]
    if conversation.model:
        facts.insert(0, f"Model: {conversation.model}")
    lines += [" · ".join(facts), ""]
    if conversation.system_prompt.strip():
        lines += ["## System prompt", "", _quote(conversation.system_prompt), ""]
    for message in messages:
        heading = ROLE_TITLES.get(message.role, message.role.title())
        if message.role == "assistant" and message.model:
            heading += f" ({message.model})"
        lines += [f"## {heading}", ""]
        if message.reasoning:
            lines += [
                "<details><summary>Reasoning</summary>",
                "",
                message.reasoning,
                "",
                "</details>",
                "",
            ]
        lines += [message.content or "", ""]
        if message.status != "complete":
            note = f"*[{message.status}"
            note += f": {message.error}]*" if message.error else "]*"
            lines += [note, ""]
    return "\n".join(lines).rstrip() + "\n"


def filename(conversation: Conversation, extension: str) -> str:
    """An ASCII-safe file name (the title may be Chinese; the header carries it separately)."""
    return f"conversation-{conversation.id}.{extension}"
