"""Reading a started stream: what to pass on, per network read, until `[DONE]` or a failure.

Read by `calls.ModelCall.events`, which turns each read into the call's events (the payloads to
relay, and the text the processor recorded). A read that ends with `[DONE]` is the last; an upstream that
stops without it, or fails part-way, raises `UpstreamError` after what came before the failure in
the same read has been yielded.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from app.gateway.answer_forms import Processor
from app.gateway.attempts import StreamAttempt
from app.gateway.upstream import UpstreamError


async def payload_batches(
    attempt: StreamAttempt, processor: Processor
) -> AsyncIterator[tuple[list[bytes], bool]]:
    """(payloads to relay, finished) per read; `finished` is True on the last one."""
    async for events in attempt.events():
        out: list[bytes] = []
        for payload in events:
            try:
                result = processor.process(payload)
            except UpstreamError:
                if out:
                    yield out, False
                raise
            if result.done:
                if result.relay is not None:  # a format whose last event is relayed
                    out.append(result.relay)
                tail = processor.flush()
                if tail is not None:
                    out.append(tail)
                yield out, True
                return
            if result.relay is not None:
                out.append(result.relay)
        if out:
            yield out, False
    raise UpstreamError("protocol", "upstream ended the stream without [DONE]")
