"""The context a reply is generated from: the conversation's own preset, then its history,
trimmed from the oldest end to the `chat_context_tokens` budget (estimated offline)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from app.gateway.usage import PER_MESSAGE_TOKENS, estimate_prompt_tokens, estimate_text_tokens
from app.models import Conversation, Message


def preset(conversation: Conversation) -> list[dict[str, Any]]:
    head: list[dict[str, Any]] = []
    if conversation.system_prompt.strip():
        head.append({"role": "system", "content": conversation.system_prompt})
    head += [
        {"role": item["role"], "content": item["content"]}
        for item in conversation.preset_messages
        if isinstance(item, dict) and item.get("content")
    ]
    return head


def sendable(message: Message) -> bool:
    """User messages, and assistant messages that said something (a failed reply may be empty)."""
    return message.role == "user" or (message.role == "assistant" and bool(message.content))


def build_context(
    conversation: Conversation, history: Sequence[Message], budget_tokens: int
) -> list[dict[str, Any]]:
    """Preset + as many of the newest messages as fit the budget (the newest always goes)."""
    head = preset(conversation)
    used = estimate_prompt_tokens(head)
    kept: list[dict[str, Any]] = []
    for message in reversed([m for m in history if sendable(m)]):
        cost = PER_MESSAGE_TOKENS + estimate_text_tokens(message.content)
        if kept and used + cost > budget_tokens:
            break
        kept.append({"role": message.role, "content": message.content})
        used += cost
    kept.reverse()
    # Some providers insist that the history starts with the user: drop a leading reply that
    # lost its question to the trimming.
    while len(kept) > 1 and kept[0]["role"] == "assistant":
        kept.pop(0)
    return head + kept
