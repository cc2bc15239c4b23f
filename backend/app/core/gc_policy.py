"""Garbage-collector settings for a serving process.

CPython's default (a young collection every 700 new container objects, an older one every 10 of
those) is tuned for small scripts. A server with a large, long-lived heap (the ORM, FastAPI's
routes and schemas, the channel registry) and many short-lived objects per request spent about a
quarter of its CPU per `/v1` call in the collector: objects of calls still in flight survive each
young collection and are scanned again and again. After start-up the heap that lives as long as
the process is frozen (never scanned again) and young collections run every 10,000 objects;
reference counting still frees everything without cycles at once.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 10_000


def tune_for_serving() -> None:
    """Call once the app has started (its long-lived objects exist)."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
