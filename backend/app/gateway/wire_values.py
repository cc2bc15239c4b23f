"""The small values every wire format shares: JSON read leniently, data URLs, generated ids.

A value a client or a provider sent with the wrong type reads as absent (`as_object`,
`non_negative`); a data URL splits into its media type and base64 data; ids the gateway makes up
(responses, messages, items) are unique per process and never repeat within it.
"""

from __future__ import annotations

import itertools
import os
import re
from typing import Any

_DATA_URL = re.compile(r"^data:([\w.+-]+/[\w.+-]+);base64,(.*)$", re.DOTALL)
_PROCESS = os.urandom(5).hex()
_IDS = itertools.count(1)


def as_object(value: Any) -> dict[str, Any]:
    """`value` if it is a JSON object, else an empty one."""
    return value if isinstance(value, dict) else {}


def non_negative(value: Any) -> int:
    """`value` if it is a non-negative integer (a token count), else 0."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def data_url(url: str) -> tuple[str, str] | None:
    """(media type, base64 data) of a `data:<type>;base64,<data>` URL; None for any other URL."""
    found = _DATA_URL.match(url)
    return (found[1], found[2]) if found else None


def new_id(prefix: str) -> str:
    """`<prefix>_<process><counter>`, e.g. resp_3f9a…1c."""
    return f"{prefix}_{_PROCESS}{next(_IDS):x}"
