"""Reading values out of JSON a client or a provider sent, where a wrong type means "absent"."""

from __future__ import annotations

from typing import Any


def as_object(value: Any) -> dict[str, Any]:
    """`value` if it is a JSON object, else an empty one."""
    return value if isinstance(value, dict) else {}


def non_negative(value: Any) -> int:
    """`value` if it is a non-negative integer (a token count), else 0."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0
