"""One attempt at one channel: the request sent, and the answer read until it says something.

A stream attempt returns once the upstream has sent something substantive (text, reasoning, a tool
call, the end), so that an error or a stall before that can still be answered by another channel;
a non-stream attempt returns the whole answer, checked. Either holds the upstream response and the
call's concurrency slot until `close()`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from app.core.timers import Deadline
from app.gateway.answer_forms import CHAT, AnswerForm
from app.gateway.cache import RoutableChannel
from app.gateway.dialects import StreamDecoder
from app.gateway.http_client import HttpClient, Response
from app.gateway.passthrough import FORMS
from app.gateway.request import ModelRequest
from app.gateway.sse import SSEDecoder
from app.gateway.upstream import (
    UpstreamError,
    check_literal_address,
    iter_body,
    open_post,
    read_body,
)
from app.runtime_settings.cache import RuntimeSettingsCache


@dataclass
class Attempt:
    """A channel that answered. `close()` releases the upstream connection and the slot."""

    channel: RoutableChannel
    upstream_model: str
    response: Response
    _release: Callable[[], None] = field(repr=False)
    _closed: bool = False
    form: AnswerForm = CHAT  # the format of the answer (chat, or the request's own passed through)

    def close(self) -> None:
        """A connection whose answer was read in full goes back to the pool; any other is closed."""
        if self._closed:
            return
        self._closed = True
        self.response.close()
        self._release()


@dataclass
class StreamAttempt(Attempt):
    decoder: StreamDecoder = field(default_factory=SSEDecoder)
    first_events: list[bytes] = field(default_factory=list)
    deadline: float = 0.0

    async def events(self) -> AsyncIterator[list[bytes]]:
        """Batches of SSE data payloads, the first batch being the one already read."""
        yield self.first_events
        async for chunk in iter_body(self.response, self.channel.timeouts.idle, self.deadline):
            events = self.decoder.feed(chunk)
            if events:
                yield events
        tail = self.decoder.finish()
        if tail:
            yield tail


@dataclass
class CompleteAttempt(Attempt):
    raw: bytes = b""
    parsed: dict[str, Any] = field(default_factory=dict)


class ChannelAttempts:
    """Makes one attempt at one channel (`await attempts(channel, …)`)."""

    def __init__(
        self,
        *,
        client: Callable[[], HttpClient],
        runtime: RuntimeSettingsCache,
        max_response_bytes: int,
    ) -> None:
        self._client = client
        self._runtime = runtime
        self._max_response_bytes = max_response_bytes

    async def __call__(
        self,
        channel: RoutableChannel,
        upstream_model: str,
        request: ModelRequest,
        deadline: float,
        release: Callable[[], None],
    ) -> StreamAttempt | CompleteAttempt:
        check_literal_address(
            channel.literal_address, self._runtime.current.allow_private_upstreams
        )
        loop = asyncio.get_running_loop()
        started = loop.time()
        first_byte = min(channel.timeouts.first_byte, max(0.001, deadline - started))
        total_deadline = started + channel.timeouts.total
        dialect = channel.dialect
        native = request.native
        form: AnswerForm = CHAT
        if native is not None and native.endpoint in channel.native:
            form, endpoint = FORMS[native.endpoint], native.endpoint
            body = native.upstream_body(upstream_model)
            prepared = (
                channel.post_with(native.headers, endpoint, upstream_model, request.stream)
                if native.headers
                else channel.post(endpoint, upstream_model, request.stream)
            )
        else:
            endpoint = request.endpoint
            refusal = dialect.refusal(endpoint)
            if refusal is not None:
                raise UpstreamError("status", refusal, status=400, provider_message=refusal)
            body = dialect.body(request, upstream_model)
            prepared = channel.post(endpoint, upstream_model, request.stream)
        response: Response | None = None
        phase = "first_byte"
        try:
            # One timeout for the whole attempt: first the first-byte deadline, then (non-stream)
            # moved to the channel's total deadline once the answer has started.
            async with Deadline(started + first_byte) as deadline_scope:
                response = await open_post(
                    self._client(),
                    prepared,
                    body,
                    channel.timeouts.connect,
                    channel.api_key,
                )
                if request.stream:
                    decoder = SSEDecoder() if form.native else dialect.decoder(upstream_model)
                    first = await _read_until_substantive(
                        response, decoder, form, channel, total_deadline
                    )
                    return StreamAttempt(
                        channel=channel,
                        upstream_model=upstream_model,
                        response=response,
                        _release=release,
                        decoder=decoder,
                        first_events=first,
                        deadline=total_deadline,
                        form=form,
                    )
                phase = "body"
                deadline_scope.reschedule(total_deadline)
                raw = await read_body(response, self._max_response_bytes)
            try:
                parsed = orjson.loads(raw)
            except orjson.JSONDecodeError:
                raise UpstreamError("protocol", "upstream answered with invalid JSON") from None
            if not isinstance(parsed, dict):
                raise UpstreamError("protocol", "upstream answered with unexpected JSON")
            if not form.native:
                converted = dialect.answer(parsed, upstream_model)
                if converted is not parsed:
                    parsed, raw = converted, orjson.dumps(converted)
            error = form.inband(parsed, channel.api_key)
            if error is not None:
                raise error
            return CompleteAttempt(
                channel=channel,
                upstream_model=upstream_model,
                response=response,
                _release=release,
                raw=raw,
                parsed=parsed,
                form=form,
            )
        except TimeoutError:
            if response is not None:
                response.close()
            if phase == "first_byte":
                raise UpstreamError(
                    "timeout", f"no first byte from upstream within {first_byte:g}s"
                ) from None
            raise UpstreamError(
                "timeout", "upstream did not finish within the channel's total timeout"
            ) from None
        except BaseException:
            if response is not None:
                response.close()
            raise


async def _read_until_substantive(
    response: Response,
    decoder: StreamDecoder,
    form: AnswerForm,
    channel: RoutableChannel,
    total_deadline: float,
) -> list[bytes]:
    """Read the stream until an event says something (text, reasoning, a tool call, the end).

    Until then nothing has been sent to the client, so an error or a stall here can still be
    answered by another channel. The events read are returned to be relayed.
    """
    events: list[bytes] = []
    secret = channel.api_key
    async for chunk in iter_body(response, channel.timeouts.idle, total_deadline):
        new = decoder.feed(chunk)
        events += new
        if any(form.substantive(payload, secret) for payload in new):
            return events
    events += decoder.finish()
    if any(form.substantive(payload, secret) for payload in events):
        return events
    raise UpstreamError("protocol", "upstream ended the stream without any answer")
