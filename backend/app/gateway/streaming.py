"""Reading a started stream: what to pass on, per network read, until `[DONE]` or a failure.

Read by `calls.ModelCall.events`, which turns each read into the call's events (the payloads to
relay, and the text the processor recorded). A read that ends with `[DONE]` is the last; an upstream that
stops without it, or fails part-way, raises `UpstreamError` after what came before the failure in
the same read has been yielded.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from app.gateway.answer_forms import Processor
from app.gateway.attempts import StreamAttempt
from app.gateway.upstream import UpstreamError


@dataclass(slots=True)
class Batch:
    """What one network read gave to relay: the payloads, the chat chunks among them as parsed
    (so a translating endpoint does not parse them again), and whether it was the last read."""

    payloads: list[bytes] = field(default_factory=list)
    chunks: list[dict[str, Any]] = field(default_factory=list)
    finished: bool = False

    def add(self, relay: bytes, parsed: dict[str, Any] | None) -> None:
        self.payloads.append(relay)
        if parsed is not None:
            self.chunks.append(parsed)


class AllowanceReachedError(Exception):
    """The answer reached the output its budget reservation covers: the stream ends here."""


async def payload_batches(
    attempt: StreamAttempt, processor: Processor, meter: Callable[[], bool] | None = None
) -> AsyncIterator[Batch]:
    """One `Batch` per read; the last has `finished` set. `meter`: whether the answer recorded
    so far went past its allowance (then what is past it was taken back out of the record, and
    the stream ends with `AllowanceReachedError` before that payload)."""
    async for events in attempt.events():
        batch = Batch()
        for payload in events:
            try:
                result = processor.process(payload)
            except UpstreamError:
                if batch.payloads:
                    yield batch
                raise
            if meter is not None and not result.done and meter():
                if batch.payloads:
                    yield batch
                raise AllowanceReachedError
            if result.relay is not None:  # (a format whose last event is relayed, too)
                batch.add(result.relay, result.parsed)
            if result.done:
                tail = processor.flush()
                if tail is not None:
                    batch.add(tail, orjson.loads(tail))
                batch.finished = True
                yield batch
                return
        if batch.payloads:
            yield batch
    raise UpstreamError(
        "protocol", "upstream ended the stream before its end (no [DONE] or final event)"
    )
