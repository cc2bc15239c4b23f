"""The serving process's collector settings (checked in a fresh interpreter: they are global)."""

from __future__ import annotations

import json
import subprocess
import sys

SCRIPT = """
import gc, json
from app.core import gc_policy
before = gc.get_threshold()
gc_policy.tune_for_serving()
print(json.dumps({"before": before, "after": gc.get_threshold(), "frozen": gc.get_freeze_count()}))
"""


def test_long_lived_heap_is_frozen_and_young_collections_are_rarer() -> None:
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True, timeout=60
    )
    state = json.loads(out.stdout)
    assert state["after"][0] == 10_000 > state["before"][0]
    assert state["after"][1:] == state["before"][1:]
    assert state["frozen"] > 1_000  # the modules' objects are out of every future collection
