"""Realistic call-log rows, for tests and the statistics benchmark (not used by the server).

A mix like a team gateway's: a few popular models, a long tail of users and keys, mostly
successful streamed calls, some errors and refusals, reasoning and cached tokens on some models.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

MODELS = (
    ("gpt-4o-mini", 30),
    ("deepseek-chat", 25),
    ("deepseek-reasoner", 12),
    ("qwen-max", 10),
    ("gpt-4o", 8),
    ("claude-sonnet", 7),
    ("glm-4", 5),
    ("llama-3-70b", 3),
)
ENDS = (("done", 92), ("client_gone", 3), ("upstream_error", 2), ("timeout", 1), ("rejected", 2))


def rows(
    count: int,
    *,
    start: datetime,
    end: datetime,
    users: int = 200,
    channels: int = 8,
    seed: int = 1,
) -> Iterator[dict[str, Any]]:
    """`count` rows with `created_at` spread evenly (with jitter) over [start, end), in time order."""
    rng = random.Random(seed)  # noqa: S311 (test data, not secrets)
    models = [m for m, _ in MODELS]
    model_weights = [w for _, w in MODELS]
    ends = [e for e, _ in ENDS]
    end_weights = [w for _, w in ENDS]
    span = (end - start).total_seconds()
    step = span / max(count, 1)
    for index in range(count):
        created = start + timedelta(seconds=min(span - 0.001, index * step + rng.random() * step))
        model = rng.choices(models, model_weights)[0]
        reason = rng.choices(ends, end_weights)[0]
        user = int(rng.paretovariate(1.2)) % users + 1
        key = user * 2 - rng.randint(0, 1) if rng.random() < 0.7 else None
        channel = None if reason == "rejected" else rng.randint(1, channels)
        stream = rng.random() < 0.8
        prompt = rng.randint(20, 4000)
        completion = 0 if reason == "rejected" else rng.randint(1, 1500)
        reasoning = rng.randint(0, completion) if "reasoner" in model else 0
        cached = rng.randint(0, prompt // 2) if rng.random() < 0.2 else 0
        duration = int(rng.lognormvariate(7.5, 0.8)) if channel else rng.randint(1, 20)
        yield {
            "created_at": created,
            "request_id": f"bench-{seed}-{index}",
            "source": "chat" if rng.random() < 0.3 else "api",
            "user_id": user,
            "api_key_id": key,
            "client_ip": f"10.{user % 250}.{rng.randint(0, 255)}.{rng.randint(1, 254)}",
            "requested_model": model,
            "upstream_model": model if channel else None,
            "channel_id": channel,
            "channels_tried": [channel] if channel else [],
            "stream": stream,
            "status_code": {"done": 200, "client_gone": 499, "rejected": 429}.get(reason, 502),
            "success": reason == "done",
            "end_reason": reason,
            "error_message": None if reason in ("done", "client_gone") else f"{reason} (mock)",
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "reasoning_tokens": reasoning,
            "cached_tokens": cached,
            "total_tokens": prompt + completion,
            "usage_source": "provider" if rng.random() < 0.9 else "estimated",
            "ttft_ms": min(duration, int(rng.lognormvariate(6.2, 0.7)))
            if stream and channel
            else None,
            "duration_ms": duration,
        }
