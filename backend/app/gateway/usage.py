"""Token usage: read from the provider when it reports it, estimated offline when it does not.

The estimate needs no tokenizer download: CJK characters count as one token each (close for modern
BPE vocabularies on Chinese text), other text as one token per four characters, plus the usual
per-message overhead. It is marked `estimated` wherever it is stored.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from app.gateway.wire_values import non_negative

_CJK = re.compile(
    "[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\uff00-\uffef\u3000-\u303f]"
)
PER_MESSAGE_TOKENS = 4
REPLY_PRIMING_TOKENS = 3


def estimate_text_tokens(text: str) -> int:
    if not text:
        return 0
    cjk = len(_CJK.findall(text))
    return cjk + math.ceil((len(text) - cjk) / 4)


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            part.get("text", "")
            for part in content
            if isinstance(part, dict) and isinstance(part.get("text"), str)
        )
    return ""


def estimate_prompt_tokens(messages: list[Any]) -> int:
    total = REPLY_PRIMING_TOKENS
    for message in messages:
        if not isinstance(message, dict):
            continue
        total += PER_MESSAGE_TOKENS + estimate_text_tokens(_content_text(message.get("content")))
        for call in message.get("tool_calls") or []:
            if isinstance(call, dict):
                function = call.get("function") or {}
                total += estimate_text_tokens(str(function.get("arguments", "")))
    return total


@dataclass
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0
    cached_tokens: int = 0
    total_tokens: int = 0
    source: str = "none"  # provider | estimated | none


def from_provider(usage: Any) -> Usage | None:
    """The provider's numbers as given (a reported 0 stays 0). None if it is not a usage object."""
    if not isinstance(usage, dict) or not any(
        key in usage for key in ("prompt_tokens", "completion_tokens", "total_tokens")
    ):
        return None
    prompt, completion = (
        non_negative(usage.get("prompt_tokens")),
        non_negative(usage.get("completion_tokens")),
    )
    details_in = usage.get("prompt_tokens_details") or {}
    details_out = usage.get("completion_tokens_details") or {}
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        reasoning_tokens=non_negative(details_out.get("reasoning_tokens"))
        if isinstance(details_out, dict)
        else 0,
        cached_tokens=non_negative(details_in.get("cached_tokens"))
        if isinstance(details_in, dict)
        else 0,
        total_tokens=non_negative(usage.get("total_tokens")) or prompt + completion,
        source="provider",
    )


def estimated(
    messages: list[Any], completion_chars: str, reasoning_chars: str, tool_chars: str
) -> Usage:
    prompt = estimate_prompt_tokens(messages)
    reasoning = estimate_text_tokens(reasoning_chars)
    completion = (
        estimate_text_tokens(completion_chars) + estimate_text_tokens(tool_chars) + reasoning
    )
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        reasoning_tokens=reasoning,
        total_tokens=prompt + completion,
        source="estimated",
    )
