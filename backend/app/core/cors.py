"""CORS for the OpenAI-compatible API: which web pages may call `/v1` from a browser.

Off unless an admin lists origins (runtime setting `cors_allowed_origins`). Callers authenticate
with their API key in a header, so credentials (cookies) are never allowed, and `*` is safe to
offer. A preflight (`OPTIONS` with `Access-Control-Request-Method`) is answered here with 204;
every other answer to an allowed origin carries `Access-Control-Allow-Origin`.
"""

from __future__ import annotations

import functools
import re
from urllib.parse import urlsplit

MAX_AGE_SECONDS = 600
ALLOWED_METHODS = b"GET, POST, DELETE, OPTIONS"
EXPOSED_HEADERS = b"X-Request-ID, Retry-After"
# Request headers a browser may send (asked for in a preflight), bounded in size.
_HEADER_LIST = re.compile(rb"^[A-Za-z0-9!#$%&'*+.^_`|~-]+(\s*,\s*[A-Za-z0-9!#$%&'*+.^_`|~-]+)*$")
MAX_REQUEST_HEADERS_BYTES = 2048


@functools.lru_cache(maxsize=8)
def parse_origins(text: str) -> tuple[str, ...]:
    """The origins in `text` (spaces or commas between), normalised; ValueError names a bad one."""
    origins: list[str] = []
    for item in re.split(r"[\s,]+", text.strip()):
        if not item:
            continue
        if item == "*":
            origins.append(item)
            continue
        parts = urlsplit(item.rstrip("/"))
        if (
            parts.scheme not in ("http", "https")
            or not parts.hostname
            or parts.path
            or parts.query
            or parts.fragment
            or parts.username
            or parts.password
        ):
            raise ValueError(f"{item!r} is not an origin: write https://app.example.com, or *")
        origins.append(f"{parts.scheme}://{parts.netloc.lower()}")
    return tuple(dict.fromkeys(origins))


def allowed_origin(origins: tuple[str, ...], origin: bytes | None) -> bytes | None:
    """The Access-Control-Allow-Origin value for a request from `origin`, or None."""
    if not origin or not origins:
        return None
    if "*" in origins:
        return b"*"
    text = origin.decode("latin-1").lower()
    return origin if text in origins else None


def response_headers(allow: bytes) -> list[tuple[bytes, bytes]]:
    headers = [
        (b"access-control-allow-origin", allow),
        (b"access-control-expose-headers", EXPOSED_HEADERS),
    ]
    if allow != b"*":
        headers.append((b"vary", b"Origin"))
    return headers


def preflight_headers(allow: bytes, requested: bytes | None) -> list[tuple[bytes, bytes]]:
    headers = [
        (b"access-control-allow-origin", allow),
        (b"access-control-allow-methods", ALLOWED_METHODS),
        (b"access-control-max-age", str(MAX_AGE_SECONDS).encode()),
    ]
    if requested and len(requested) <= MAX_REQUEST_HEADERS_BYTES and _HEADER_LIST.match(requested):
        headers.append((b"access-control-allow-headers", requested))
    if allow != b"*":
        headers.append((b"vary", b"Origin"))
    return headers
