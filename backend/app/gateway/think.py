"""Splitting inline `<think>…</think>` (DeepSeek-R1 style on some hosts) into `reasoning_content`.

Only a block at the very start of the answer counts; the tags may arrive split across chunks.
"""

from __future__ import annotations

import re

OPEN, CLOSE = "<think>", "</think>"
_BLOCK = re.compile(r"^\s*<think>(.*?)</think>\s*", re.DOTALL)


def split_complete(content: str) -> tuple[str | None, str]:
    """For a whole answer: (reasoning or None, content without the block)."""
    match = _BLOCK.match(content)
    if match is None:
        return None, content
    return match.group(1), content[match.end() :]


class ThinkSplitter:
    """Feed content deltas in order; get (reasoning, content) to emit for each."""

    __slots__ = ("_pending", "_state")

    def __init__(self) -> None:
        self._state = "start"  # start -> thinking -> content
        self._pending = ""

    def feed(self, text: str) -> tuple[str, str]:
        if self._state == "content":
            return "", text
        self._pending += text
        if self._state == "start":
            stripped = self._pending.lstrip()
            if stripped.startswith(OPEN):
                self._state = "thinking"
                self._pending = stripped[len(OPEN) :]
            elif OPEN.startswith(stripped):
                return "", ""  # could still become "<think>": wait for more
            else:
                self._state = "content"
                out, self._pending = self._pending, ""
                return "", out
        # thinking
        end = self._pending.find(CLOSE)
        if end >= 0:
            reasoning, rest = self._pending[:end], self._pending[end + len(CLOSE) :]
            self._state, self._pending = "content", ""
            return reasoning, rest.lstrip("\n")
        keep = _partial_suffix(self._pending, CLOSE)
        reasoning = self._pending[: len(self._pending) - keep]
        self._pending = self._pending[len(self._pending) - keep :]
        return reasoning, ""

    def flush(self) -> tuple[str, str]:
        """At the end of the stream: whatever is still held back."""
        pending, self._pending = self._pending, ""
        if self._state == "thinking":
            return pending, ""
        return "", pending


def _partial_suffix(text: str, tag: str) -> int:
    """Length of the longest suffix of `text` that is a proper prefix of `tag`."""
    for size in range(min(len(tag) - 1, len(text)), 0, -1):
        if text.endswith(tag[:size]):
            return size
    return 0
