"""Generating a reply: the model call, its events turned into the reply's own, how it went.

The call is a `ModelCall` (routing, failover, the call log); this turns its typed events into the
reply's `reasoning` and `delta` events and records in the `Outcome` how the reply ended.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from app.conversations.reply import Outcome, ReplySpec, checkpoint
from app.core.errors import AppError
from app.gateway.call_events import CallError, ReasoningDelta, TextDelta
from app.gateway.caller import Caller
from app.gateway.calls import ModelCall
from app.gateway.request import ModelRequest

logger = logging.getLogger(__name__)
Emit = Callable[[str, Any], None]


async def generate(call: ModelCall, spec: ReplySpec, outcome: Outcome, emit: Emit) -> None:
    """Run the call, emitting the reply's events as they come; how it went goes into `outcome`.
    A cancellation (stop, shutdown) is passed on, with the call ended and logged."""
    try:
        if spec.user_message is not None:
            emit("message", spec.user_message)
        body = {**spec.params, "model": spec.model, "messages": spec.messages, "stream": True}
        request = ModelRequest(
            body=body, model=spec.model, stream=True, include_usage=True, messages=spec.messages
        )
        caller = Caller(user_id=spec.user_id, limits=spec.limits)
        # A crash keeps the text so far (logs.journal).
        await call.start(request, caller, checkpoint=lambda: checkpoint(spec, call))
        async for event in call.events():
            now = time.perf_counter()
            if type(event) is ReasoningDelta:
                outcome.first_reasoning = outcome.first_reasoning or now
                outcome.last_reasoning = now
                emit("reasoning", {"content": event.text})
            elif type(event) is TextDelta:
                outcome.first_text = outcome.first_text or now
                emit("delta", {"content": event.text})
            elif type(event) is CallError:  # failed part-way
                outcome.fail(event.message, event.code)
    except AppError as error:  # refused before anything was generated (limits, no channel …)
        retry_after = error.headers.get("Retry-After")
        outcome.fail(
            error.message,
            error.code,
            status=error.status_code,
            retry_after=int(retry_after) if retry_after and retry_after.isdigit() else None,
        )
    except Exception:
        logger.exception("Reply %s failed", spec.request_id)
        call.fail_internally()
        outcome.fail("The reply failed because of an internal error", "internal_error")
    finally:
        call.close()
