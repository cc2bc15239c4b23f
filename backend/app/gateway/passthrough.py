"""Answers in a provider's own format, passed through: the Responses API from a channel that speaks
it, the Messages API from an Anthropic channel.

Both stream typed events (`event: <type>` with the same `type` in the data); each event is relayed
as the upstream sent it, re-serialised only where the gateway changes it (the model name a channel
mapping renamed, a response's id). On the way the processor records the text and the provider's
usage for the call log, turns an `error` event into the call's failure, and knows the event that
ends the stream.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson

from app.gateway.accounting import CallRecord
from app.gateway.answer_forms import Reading
from app.gateway.anthropic_upstream import chat_usage
from app.gateway.chunks import ChunkResult
from app.gateway.upstream import UpstreamError, scrub
from app.gateway.usage import Usage, from_provider
from app.gateway.wire_values import as_object

logger = logging.getLogger(__name__)


def frame(kind: str, data: bytes) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + data + b"\n\n"


def _error(message: Any, code: Any, secret: str) -> UpstreamError:
    text = scrub(str(message or "upstream reported an error"), secret)[:1000]
    return UpstreamError("inband", text, code=str(code) if code is not None else None)


def _parse(payload: bytes) -> dict[str, Any] | None:
    try:
        parsed = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None
    return parsed if isinstance(parsed, dict) and isinstance(parsed.get("type"), str) else None


class EventForm:
    """What the Responses and Messages formats share; each says what its events mean."""

    native = True
    substance: frozenset[str] = frozenset()

    def event_error(self, event: dict[str, Any], secret: str) -> UpstreamError | None:
        raise NotImplementedError

    def inband(self, parsed: dict[str, Any], secret: str) -> UpstreamError | None:
        """An error inside a 200's whole answer."""
        raise NotImplementedError

    def processor(self, reading: Reading) -> EventStream:
        return EventStream(self, reading)

    def substantive(self, payload: bytes, secret: str) -> bool:
        event = _parse(payload)
        if event is None:
            return False
        error = self.event_error(event, secret)
        if error is not None:
            raise error
        return self.is_substance(event)

    def is_substance(self, event: dict[str, Any]) -> bool:
        return event["type"] in self.substance

    def observe(self, stream: EventStream, event: dict[str, Any]) -> tuple[bool, bool]:
        """Record what `event` says; (whether it was changed, whether it ends the stream)."""
        raise NotImplementedError

    def complete(self, reading: Reading, raw: bytes, parsed: dict[str, Any]) -> bytes:
        raise NotImplementedError


class EventStream:
    """One passed-through stream (`Processor`): whole SSE frames out."""

    def __init__(self, form: EventForm, reading: Reading) -> None:
        self.form = form
        self.record = reading.record
        self.secret = reading.secret
        self.public_model = reading.public_model
        self.answer_fields = reading.native.answer_fields if reading.native is not None else {}
        self.final: dict[str, Any] | None = None
        self.usage: dict[str, Any] = {}
        self._warned = False

    def process(self, payload: bytes) -> ChunkResult:
        event = _parse(payload)
        if event is None:
            if not self._warned:
                self._warned = True
                logger.warning(
                    "Dropped a malformed event from the upstream (request %s, model %s)",
                    self.record.request_id,
                    self.record.upstream_model,
                )
            return ChunkResult(relay=None)
        error = self.form.event_error(event, self.secret)
        if error is not None:
            raise error
        changed, done = self.form.observe(self, event)
        data = orjson.dumps(event) if changed else payload
        return ChunkResult(relay=frame(event["type"], data), done=done)

    def flush(self) -> bytes | None:
        return None

    def said(self, parts: list[str], text: Any) -> None:
        if isinstance(text, str) and text:
            parts.append(text)
            self.record.mark_first_token()

    def report(self, usage: Usage | None) -> None:
        if usage is not None:
            self.record.provider_usage = usage


# ── the Responses API ────────────────────────────────────────────────────────────────────────
RESPONSE_EVENTS = frozenset(
    {
        "response.created",
        "response.queued",
        "response.in_progress",
        "response.completed",
        "response.incomplete",
    }
)
RESPONSE_ENDS = frozenset({"response.completed", "response.incomplete"})


def responses_usage(usage: Any) -> Usage | None:
    """A Responses `usage` object as the call log's usage."""
    usage = as_object(usage)
    if "input_tokens" not in usage and "output_tokens" not in usage:
        return None
    return from_provider(
        {
            "prompt_tokens": usage.get("input_tokens"),
            "completion_tokens": usage.get("output_tokens"),
            "total_tokens": usage.get("total_tokens"),
            "prompt_tokens_details": as_object(usage.get("input_tokens_details")),
            "completion_tokens_details": as_object(usage.get("output_tokens_details")),
        }
    )


def _record_output(record: CallRecord, output: Any) -> None:
    for item in output if isinstance(output, list) else ():
        item = as_object(item)
        kind = item.get("type")
        if kind == "message":
            for part in item.get("content") or ():
                part = as_object(part)
                text = part.get("text") if part.get("type") == "output_text" else None
                text = part.get("refusal") if part.get("type") == "refusal" else text
                if isinstance(text, str):
                    record.completion_parts.append(text)
        elif kind == "reasoning":
            for part in item.get("summary") or ():
                text = as_object(part).get("text")
                if isinstance(text, str):
                    record.reasoning_parts.append(text)
        elif kind == "function_call":
            record.tool_parts.append(str(item.get("arguments") or ""))


def own_response(
    response: dict[str, Any], fields: dict[str, Any], public_model: str | None
) -> None:
    """The response as the gateway gives it: its own id (and the previous response it
    continued), the model name the caller used."""
    response.update(fields)
    if public_model is not None and "model" in response:
        response["model"] = public_model


class ResponsesForm(EventForm):
    substance = frozenset(
        {
            "response.output_text.delta",
            "response.refusal.delta",
            "response.reasoning_summary_text.delta",
            "response.reasoning_text.delta",
            "response.function_call_arguments.delta",
            *RESPONSE_ENDS,
        }
    )

    def is_substance(self, event: dict[str, Any]) -> bool:
        if event["type"] == "response.output_item.added":  # a built-in tool at work
            return as_object(event.get("item")).get("type") not in ("message", "reasoning")
        return event["type"] in self.substance

    def event_error(self, event: dict[str, Any], secret: str) -> UpstreamError | None:
        kind = event["type"]
        if kind == "error":
            error = as_object(event.get("error")) or event
            return _error(error.get("message"), error.get("code"), secret)
        if kind == "response.failed":
            error = as_object(as_object(event.get("response")).get("error"))
            return _error(error.get("message"), error.get("code"), secret)
        return None

    def observe(self, stream: EventStream, event: dict[str, Any]) -> tuple[bool, bool]:
        kind = event["type"]
        record = stream.record
        if kind == "response.output_text.delta" or kind == "response.refusal.delta":
            stream.said(record.completion_parts, event.get("delta"))
        elif kind in ("response.reasoning_summary_text.delta", "response.reasoning_text.delta"):
            stream.said(record.reasoning_parts, event.get("delta"))
        elif kind == "response.function_call_arguments.delta":
            stream.said(record.tool_parts, event.get("delta"))
        elif kind in RESPONSE_EVENTS:
            response = event.get("response")
            if not isinstance(response, dict):
                return False, kind in RESPONSE_ENDS
            own_response(response, stream.answer_fields, stream.public_model)
            if kind in RESPONSE_ENDS:
                stream.report(responses_usage(response.get("usage")))
                stream.final = response
                return True, True
            return True, False
        return False, False

    def complete(self, reading: Reading, raw: bytes, parsed: dict[str, Any]) -> bytes:
        record, native = reading.record, reading.native
        usage = responses_usage(parsed.get("usage"))
        if usage is not None:
            record.provider_usage = usage
        _record_output(record, parsed.get("output"))
        own_response(
            parsed, native.answer_fields if native is not None else {}, reading.public_model
        )
        return orjson.dumps(parsed)

    def inband(self, parsed: dict[str, Any], secret: str) -> UpstreamError | None:
        error = parsed.get("error")
        if parsed.get("status") == "failed" or isinstance(error, dict):
            error = as_object(error)
            return _error(error.get("message"), error.get("code"), secret)
        return None


# ── the Messages API ─────────────────────────────────────────────────────────────────────────
def messages_usage(usage: dict[str, Any]) -> Usage | None:
    if "input_tokens" not in usage and "output_tokens" not in usage:
        return None
    return from_provider(chat_usage(usage))


class MessagesForm(EventForm):
    substance = frozenset({"content_block_delta", "message_delta", "message_stop"})

    def is_substance(self, event: dict[str, Any]) -> bool:
        if event["type"] == "content_block_start":  # a tool call (its input may stream later)
            return as_object(event.get("content_block")).get("type") not in ("text", "thinking")
        return event["type"] in self.substance

    def event_error(self, event: dict[str, Any], secret: str) -> UpstreamError | None:
        if event["type"] != "error":
            return None
        error = as_object(event.get("error"))
        return _error(error.get("message"), error.get("type"), secret)

    def observe(self, stream: EventStream, event: dict[str, Any]) -> tuple[bool, bool]:
        kind = event["type"]
        record = stream.record
        if kind == "content_block_delta":
            delta = as_object(event.get("delta"))
            part = delta.get("type")
            if part == "text_delta":
                stream.said(record.completion_parts, delta.get("text"))
            elif part == "thinking_delta":
                stream.said(record.reasoning_parts, delta.get("thinking"))
            elif part == "input_json_delta":
                stream.said(record.tool_parts, delta.get("partial_json"))
            return False, False
        if kind == "message_start":
            message = as_object(event.get("message"))
            stream.usage = dict(as_object(message.get("usage")))
            stream.report(messages_usage(stream.usage))
            if stream.public_model is not None and "model" in message:
                message["model"] = stream.public_model
                return True, False
            return False, False
        if kind == "message_delta":
            stream.usage.update(as_object(event.get("usage")))  # cumulative counts
            stream.report(messages_usage(stream.usage))
            return False, False
        return False, kind == "message_stop"

    def complete(self, reading: Reading, raw: bytes, parsed: dict[str, Any]) -> bytes:
        record, public_model = reading.record, reading.public_model
        usage = messages_usage(as_object(parsed.get("usage")))
        if usage is not None:
            record.provider_usage = usage
        for block in parsed.get("content") or ():
            block = as_object(block)
            kind = block.get("type")
            if kind == "text":
                record.completion_parts.append(str(block.get("text") or ""))
            elif kind == "thinking":
                record.reasoning_parts.append(str(block.get("thinking") or ""))
            elif kind == "tool_use":
                record.tool_parts.append(orjson.dumps(block.get("input") or {}).decode())
        if public_model is not None and "model" in parsed:
            parsed["model"] = public_model
            return orjson.dumps(parsed)
        return raw

    def inband(self, parsed: dict[str, Any], secret: str) -> UpstreamError | None:
        if parsed.get("type") == "error":
            return self.event_error(parsed, secret)
        return None


FORMS: dict[str, EventForm] = {"/responses": ResponsesForm(), "/messages": MessagesForm()}
