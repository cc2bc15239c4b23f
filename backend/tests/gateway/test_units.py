"""The gateway's pure parts: SSE decoding, think splitting, usage, breaker, gate, routing order."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from dataclasses import dataclass

import orjson
import pytest

from app.core.runtime_values import RuntimeValues
from app.gateway.accounting import CallRecord
from app.gateway.breaker import CircuitBreaker
from app.gateway.chunks import StreamProcessor
from app.gateway.concurrency import ConcurrencyGate, GateTimeoutError
from app.gateway.routing import order_candidates
from app.gateway.sse import SSEDecoder
from app.gateway.think import ThinkSplitter, split_complete
from app.gateway.upstream import UpstreamError, error_details, parse_retry_after, scrub
from app.gateway.usage import estimate_prompt_tokens, estimate_text_tokens, from_provider


# ── SSE ──────────────────────────────────────────────────────────────────────────────────────
def _feed_all(decoder: SSEDecoder, pieces: list[bytes]) -> list[bytes]:
    events: list[bytes] = []
    for piece in pieces:
        events += decoder.feed(piece)
    return events + decoder.finish()


@pytest.mark.parametrize("newline", [b"\n", b"\r\n", b"\r"])
def test_sse_line_endings(newline: bytes) -> None:
    stream = b"data: one" + newline + newline + b"data: two" + newline + newline
    assert _feed_all(SSEDecoder(), [stream]) == [b"one", b"two"]


def test_sse_split_anywhere_including_between_cr_and_lf() -> None:
    stream = b'data: {"a": 1}\r\n\r\ndata: {"b": 2}\r\n\r\n'
    for cut in range(1, len(stream)):
        assert _feed_all(SSEDecoder(), [stream[:cut], stream[cut:]]) == [b'{"a": 1}', b'{"b": 2}']
    assert _feed_all(SSEDecoder(), [bytes([b]) for b in stream]) == [b'{"a": 1}', b'{"b": 2}']


def test_sse_comments_fields_and_multiline_data() -> None:
    stream = b": keep-alive\n\nevent: x\nid: 7\ndata: line1\ndata:line2\nretry: 5\n\ndata\n\n"
    assert _feed_all(SSEDecoder(), [stream]) == [b"line1\nline2", b""]


def test_sse_final_event_without_blank_line() -> None:
    assert _feed_all(SSEDecoder(), [b"data: [DONE]"]) == [b"[DONE]"]


# ── <think> ──────────────────────────────────────────────────────────────────────────────────
def _split_stream(pieces: list[str]) -> tuple[str, str]:
    splitter = ThinkSplitter()
    reasoning = content = ""
    for piece in pieces:
        r, c = splitter.feed(piece)
        reasoning, content = reasoning + r, content + c
    r, c = splitter.flush()
    return reasoning + r, content + c


@pytest.mark.parametrize(
    "pieces",
    [
        ["<think>plan</think>answer"],
        ["<thi", "nk>pl", "an</th", "ink>", "answer"],
        ["  <think>", "plan", "</think>\n", "answer"],
        list("<think>plan</think>answer"),
    ],
)
def test_think_block_is_split_across_any_chunking(pieces: list[str]) -> None:
    assert _split_stream(pieces) == ("plan", "answer")


def test_no_think_block_passes_through_and_late_tags_stay_in_content() -> None:
    assert _split_stream(["hello ", "<think>not at start</think>"]) == (
        "",
        "hello <think>not at start</think>",
    )
    assert _split_stream(["<", "b>bold</b>"]) == ("", "<b>bold</b>")


def test_unterminated_think_is_all_reasoning() -> None:
    assert _split_stream(["<think>still going"]) == ("still going", "")


def test_split_complete() -> None:
    assert split_complete("<think>a</think>\n\nb") == ("a", "b")
    assert split_complete("plain") == (None, "plain")


# ── usage ────────────────────────────────────────────────────────────────────────────────────
def test_token_estimates_count_cjk_per_character() -> None:
    assert estimate_text_tokens("") == 0
    assert estimate_text_tokens("你好世界") == 4
    assert estimate_text_tokens("abcdefgh") == 2
    assert estimate_text_tokens("你好abcd") == 3
    messages = [
        {"role": "user", "content": "你好"},
        {"role": "user", "content": [{"type": "text", "text": "abcd"}]},
    ]
    assert estimate_prompt_tokens(messages) == 3 + (4 + 2) + (4 + 1)


def test_provider_usage_parsing_keeps_zeros_and_details() -> None:
    usage = from_provider(
        {
            "prompt_tokens": 10,
            "completion_tokens": 0,
            "total_tokens": 10,
            "prompt_tokens_details": {"cached_tokens": 4},
            "completion_tokens_details": {"reasoning_tokens": 0},
        }
    )
    assert usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens, usage.cached_tokens) == (10, 0, 4)
    assert usage.source == "provider"
    assert from_provider(None) is None
    assert from_provider({"unrelated": 1}) is None
    assert from_provider({"prompt_tokens": -5, "completion_tokens": "x"}) is not None


# ── upstream helpers ─────────────────────────────────────────────────────────────────────────
def test_error_classification_by_status_when_no_rule_matches() -> None:
    assert UpstreamError("status", "x", status=400).verdict() == "caller"
    assert UpstreamError("status", "x", status=401).verdict() == "auth"
    assert UpstreamError("status", "x", status=429, code="insufficient_quota").verdict() == "quota"
    assert UpstreamError("status", "x", status=402).verdict() == "quota"
    assert UpstreamError("status", "x", status=429).verdict() == "retryable"
    assert UpstreamError("status", "x", status=503).verdict() == "retryable"
    assert UpstreamError("timeout", "x").verdict() == "retryable"


def test_retry_after_and_error_bodies_and_scrubbing() -> None:
    assert parse_retry_after("12") == 12.0
    assert parse_retry_after("garbage") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    assert error_details(b'{"error": {"message": "m", "code": "c", "type": "t"}}') == (
        "m",
        "c",
        "t",
    )
    assert error_details(b"<html>bad gateway</html>") == ("<html>bad gateway</html>", None, None)
    assert (
        scrub("key sk-abcdefghijklmnop1234 leaked", "sk-abcdefghijklmnop1234")
        == "key sk-…1234 leaked"
    )


# ── breaker ──────────────────────────────────────────────────────────────────────────────────
class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _breaker(**overrides: float) -> tuple[CircuitBreaker, Clock]:
    clock = Clock()
    values = RuntimeValues(
        breaker_consecutive_failures=3,
        breaker_cooldown_seconds=10,
        **overrides,  # type: ignore[arg-type]
    )
    return CircuitBreaker(lambda: values, clock=clock), clock


def test_breaker_opens_half_opens_and_closes() -> None:
    breaker, clock = _breaker()
    key = (1, "m")
    for _ in range(2):
        breaker.record_failure(key)
    assert breaker.available(key)
    breaker.record_failure(key)
    assert not breaker.available(key)
    assert breaker.retry_in(key) == 10
    clock.now += 10
    assert breaker.available(key)
    assert breaker.acquire(key)  # the one half-open probe
    assert not breaker.acquire(key)
    breaker.record_failure(key)  # the probe failed: open again, cooldown doubled
    assert breaker.retry_in(key) == 20
    clock.now += 20
    assert breaker.acquire(key)
    breaker.record_success(key)
    assert breaker.available(key)
    assert breaker.acquire(key)
    assert breaker.acquire(key)


def test_breaker_openings_and_closings_are_announced_and_followed() -> None:
    seen, follower = _breaker(), _breaker()
    announced: list[tuple[tuple[int, str], float | None]] = []
    breaker, clock = seen
    breaker.on_change = lambda key, seconds: announced.append((key, seconds))
    other, _ = follower
    key = (3, "m")
    breaker.record_success(key)  # closed stays closed: nothing to say
    for _ in range(3):
        breaker.record_failure(key)
    assert announced == [(key, 10)]
    other.follow(key, 10)
    assert not other.available(key)
    assert other.open_models(3) == ["m"]
    other.follow(key, 2)  # an older, shorter opening does not shorten it
    assert other.retry_in(key) == 10
    clock.now += 10
    assert breaker.acquire(key)
    breaker.record_success(key)
    assert announced[-1] == (key, None)
    other.follow(key, None)
    assert other.available(key)
    assert other.open_models(3) == []


def test_breaker_honours_retry_after_and_the_failure_window() -> None:
    breaker, _ = _breaker()
    breaker.record_failure((1, "m"), retry_after=120)
    assert breaker.retry_in((1, "m")) == 120
    windowed, _ = _breaker(
        breaker_window=10, breaker_window_min_calls=10, breaker_window_failure_rate=0.5
    )
    key = (2, "m")
    for index in range(10):  # alternate: never 3 in a row, but half of the window fails
        if index % 2:
            windowed.record_failure(key)
        else:
            windowed.record_success(key)
    assert not windowed.available(key)


def test_breaker_probe_released_without_verdict() -> None:
    breaker, clock = _breaker()
    key = (1, "m")
    for _ in range(3):
        breaker.record_failure(key)
    clock.now += 10
    assert breaker.acquire(key)
    breaker.release_probe(key)
    assert breaker.acquire(key)


# ── concurrency gate ─────────────────────────────────────────────────────────────────────────
async def test_gate_bounds_waits_and_resizes() -> None:
    gate = ConcurrencyGate(2)
    await gate.acquire(0)
    await gate.acquire(0)
    with pytest.raises(GateTimeoutError):
        await gate.acquire(0)
    with pytest.raises(GateTimeoutError):
        await gate.acquire(0.05)
    assert gate.waiting == 0
    waiter = asyncio.ensure_future(gate.acquire(5))
    await asyncio.sleep(0.01)
    assert gate.waiting == 1
    gate.resize(3)
    await waiter
    assert gate.in_use == 3
    for _ in range(3):
        gate.release()
    assert gate.in_use == 0


async def test_gate_is_first_come_first_served_and_cancel_safe() -> None:
    gate = ConcurrencyGate(1)
    await gate.acquire(0)
    order: list[int] = []

    async def wait(n: int) -> None:
        await gate.acquire(5)
        order.append(n)
        gate.release()

    tasks = [asyncio.ensure_future(wait(n)) for n in range(3)]
    await asyncio.sleep(0.01)
    tasks[1].cancel()
    await asyncio.sleep(0.01)
    gate.release()
    await asyncio.gather(tasks[0], tasks[2])
    assert order == [0, 2]
    assert gate.in_use == 0
    assert gate.waiting == 0


async def test_a_slot_freed_while_a_cancelled_waiter_is_leaving_goes_to_the_next() -> None:
    """A waiter whose wait was cancelled (its timeout ran out, its client left) stays queued until
    its task runs again; a slot freed in between skips it instead of failing."""
    gate = ConcurrencyGate(1)
    await gate.acquire(0)
    leaving = asyncio.ensure_future(gate.acquire(5))
    staying = asyncio.ensure_future(gate.acquire(5))
    await asyncio.sleep(0.01)
    assert gate.waiting == 2
    leaving.cancel()  # its waiter is cancelled now; its task runs only at the next step
    gate.release()  # in the same step: the slot must skip the cancelled waiter
    await staying
    with pytest.raises(asyncio.CancelledError):
        await leaving
    assert gate.in_use == 1
    assert gate.waiting == 0
    gate.release()
    assert gate.in_use == 0


# ── routing ──────────────────────────────────────────────────────────────────────────────────
@dataclass(frozen=True)
class Ch:
    name: str
    priority: int
    weight: int


def test_priority_groups_come_first_and_weights_shape_the_order() -> None:
    channels = [Ch("low", 0, 1), Ch("heavy", 5, 3), Ch("light", 5, 1)]
    rng = random.Random(42)
    firsts = Counter()
    for _ in range(4000):
        order = order_candidates(channels, rng)
        assert order[-1].name == "low"
        assert {c.name for c in order} == {"low", "heavy", "light"}
        firsts[order[0].name] += 1
    share = firsts["heavy"] / 4000
    assert 0.70 < share < 0.80  # weight 3 of 4 → 75 %


# ── stream processing ────────────────────────────────────────────────────────────────────────
def _chunk(content: str) -> bytes:
    return orjson.dumps(
        {
            "id": "chatcmpl-1",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "m",
            "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": None}],
        }
    )


def _call() -> CallRecord:
    return CallRecord(
        request_id="r",
        source="api",
        user_id=1,
        api_key_id=None,
        client_ip=None,
        requested_model="m",
    )


def test_text_held_by_the_think_splitter_is_flushed_as_a_well_formed_chunk() -> None:
    call = _call()
    processor = StreamProcessor(call, split_think=True, include_usage=False, secret="sk-x")
    held = processor.process(_chunk("<th"))  # could still become "<think>": held back
    assert orjson.loads(held.relay or b"{}")["choices"][0]["delta"]["content"] == ""
    tail = processor.flush()
    assert tail is not None
    chunk = orjson.loads(tail)
    assert (chunk["id"], chunk["model"], chunk["object"]) == (
        "chatcmpl-1",
        "m",
        "chat.completion.chunk",
    )
    assert chunk["choices"][0]["delta"] == {"content": "<th"}
    assert call.completion_parts == ["<th"]
    assert processor.flush() is None


def test_malformed_chunks_are_dropped_and_errors_raised(caplog: pytest.LogCaptureFixture) -> None:
    call = _call()
    processor = StreamProcessor(
        call, split_think=False, include_usage=False, secret="sk-secret-1234"
    )
    assert processor.process(b"{not json").relay is None
    assert processor.process(b"[1, 2]").relay is None
    assert sum("malformed" in r.message for r in caplog.records) == 1  # warned once per stream
    assert processor.process(_chunk("hi")).relay == _chunk("hi")  # unchanged bytes pass through
    with pytest.raises(UpstreamError, match="sk-…1234"):
        processor.process(b'{"error": {"message": "bad key sk-secret-1234"}}')


def test_breaker_follows_a_changed_window_setting() -> None:
    values = [RuntimeValues(breaker_window=20, breaker_window_min_calls=4)]
    breaker = CircuitBreaker(lambda: values[0])
    key = (1, "m")
    for _ in range(10):
        breaker.record_success(key)
    values[0] = RuntimeValues(breaker_window=4, breaker_window_min_calls=4)
    breaker.record_failure(key)
    breaker.record_success(key)
    assert breaker.available(key)
    breaker.record_failure(key)  # 2 of the last 4 failed: the window rate (0.5) opens it
    assert not breaker.available(key)
