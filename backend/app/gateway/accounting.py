"""`CallRecord`: what one model call did, filled in as it runs and written as one call-log row."""

from __future__ import annotations

import itertools
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from app.core.ids import INT32_MAX
from app.gateway.usage import Usage, estimated
from app.models.base import utcnow

_PROCESS = uuid.uuid4().hex[:16]
_SEQUENCE = itertools.count()


def _new_process() -> None:
    """A forked child names its calls apart from its parent."""
    global _PROCESS, _SEQUENCE
    _PROCESS = uuid.uuid4().hex[:16]
    _SEQUENCE = itertools.count()


os.register_at_fork(after_in_child=_new_process)

# interrupted: the server stopped (a crash, kill -9) while the call ran; written by the next one.
EndReason = Literal["done", "client_gone", "upstream_error", "timeout", "rejected", "interrupted"]


@dataclass
class CallRecord:
    request_id: str
    source: Literal["api", "chat"]
    user_id: int | None
    api_key_id: int | None
    client_ip: str | None
    requested_model: str
    stream: bool = False
    created_at: datetime = field(default_factory=utcnow)
    started: float = field(default_factory=time.perf_counter)
    upstream_model: str | None = None
    channel_id: int | None = None
    channels_tried: list[int] = field(default_factory=list)
    status_code: int = 0
    end_reason: EndReason | None = None
    error_message: str | None = None
    provider_usage: Usage | None = None
    ttft_ms: int | None = None
    # Text seen in the answer, for estimating usage when the provider reports none.
    messages: list[Any] = field(default_factory=list)
    completion_parts: list[str] = field(default_factory=list)
    reasoning_parts: list[str] = field(default_factory=list)
    tool_parts: list[str] = field(default_factory=list)
    finished: bool = False
    # What the call holds against budgets and balances (`billing.ledger.Hold`), if anything.
    hold: Any = None
    # Its client address was counted by its admission (else a /v1 refusal counts it).
    address_counted: bool = False
    # Names the call in `calls_in_flight` while it runs (request ids can come from clients).
    # Unique across processes without a random draw per call: this process's prefix, then a count.
    journal_id: str = field(default_factory=lambda: f"{_PROCESS}{next(_SEQUENCE):x}")

    def mark_first_token(self) -> None:
        if self.ttft_ms is None:
            self.ttft_ms = int((time.perf_counter() - self.started) * 1000)

    def end(self, reason: EndReason, status_code: int, error: str | None = None) -> None:
        """Record how the call ended. The first ending wins (later ones are consequences)."""
        if self.end_reason is None:
            self.end_reason = reason
            self.status_code = status_code
            self.error_message = error[:2000] if error else None

    def finish(
        self,
        submit: Callable[[dict[str, Any]], None],
        price: Callable[[dict[str, Any]], int | None] | None = None,
    ) -> dict[str, Any] | None:
        """Hand the row (with its cost, if `price` is given) to the log writer, once, however
        many paths reach here; returns it the first time."""
        if self.finished:
            return None
        self.finished = True
        row = self.to_row()
        if price is not None:
            row["cost"] = price(row)
        submit(row)
        return row

    def usage(self) -> Usage:
        if self.provider_usage is not None:
            return self.provider_usage
        if self.end_reason == "rejected" or self.channel_id is None:
            return Usage()
        return estimated(
            self.messages,
            "".join(self.completion_parts),
            "".join(self.reasoning_parts),
            "".join(self.tool_parts),
        )

    def to_row(self) -> dict[str, Any]:
        usage = self.usage()
        reason = self.end_reason or "done"
        return {
            "created_at": self.created_at,
            "request_id": self.request_id,
            "source": self.source,
            "user_id": self.user_id,
            "api_key_id": self.api_key_id,
            "client_ip": self.client_ip,
            "requested_model": _storable(self.requested_model[:128]),
            "upstream_model": _storable(self.upstream_model[:128]) if self.upstream_model else None,
            "channel_id": self.channel_id,
            "channels_tried": self.channels_tried,
            "stream": self.stream,
            "status_code": self.status_code,
            "success": reason == "done",
            "end_reason": reason,
            "error_message": _storable(self.error_message) if self.error_message else None,
            "prompt_tokens": _count(usage.prompt_tokens),
            "completion_tokens": _count(usage.completion_tokens),
            "reasoning_tokens": _count(usage.reasoning_tokens),
            "cached_tokens": _count(usage.cached_tokens),
            "total_tokens": _count(usage.total_tokens),
            "usage_source": usage.source,
            "ttft_ms": self.ttft_ms,
            "duration_ms": int((time.perf_counter() - self.started) * 1000),
            "journal_id": self.journal_id,  # not a column: ends the call's journal entry
        }


def _storable(text: str) -> str:
    """Text as every database can store it: PostgreSQL refuses NUL characters, and a model
    name or an upstream's error text is the caller's or the upstream's to choose."""
    return text.replace("\x00", "\ufffd") if "\x00" in text else text


def _count(value: int) -> int:
    """Token counts are the upstream's word: kept within the INTEGER columns."""
    return min(max(value, 0), INT32_MAX)
