"""Headers every response carries, and the Content-Security-Policy of the pages.

Every response: `X-Content-Type-Options: nosniff` (a file is never run as something else),
`X-Frame-Options: DENY` (no framing: clickjacking), `Referrer-Policy: no-referrer` (links from
answers do not tell other sites where the reader came from).

HTML pages (the SPA, the API docs) get a policy that allows only this server's own scripts —
plus the inline scripts the pages are built with, named by their SHA-256 — no plugins, no
framing, and images only from this server or inline (`data:`, `blob:`). The chat never loads a
remote image from a model's answer (the SPA renders it as a link); the policy makes sure the
browser would not either. Styles may be inline (components and math typesetting set style
attributes). Other responses (JSON, event streams, files) get a policy that allows nothing;
responses without a body type (304, 204) get none, so a revalidated page keeps its own.
"""

from __future__ import annotations

import base64
import hashlib
import re

COMMON = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
)
NOT_A_PAGE_POLICY = b"default-src 'none'; frame-ancestors 'none'"
_INLINE_SCRIPT = re.compile(rb"<script(?![^>]*\bsrc=)[^>]*>(.*?)</script>", re.S | re.I)


def inline_script_hashes(html: bytes) -> list[str]:
    """The CSP source for each inline script of a page (`'sha256-…'`)."""
    return [
        f"'sha256-{base64.b64encode(hashlib.sha256(body).digest()).decode()}'"
        for body in _INLINE_SCRIPT.findall(html)
    ]


class SecurityHeaders:
    def __init__(self) -> None:
        self._script_sources: list[str] = []
        self._page: tuple[tuple[bytes, bytes], ...] = ()
        self._other = (*COMMON, (b"content-security-policy", NOT_A_PAGE_POLICY))
        self._build()

    def allow_inline_scripts(self, html: bytes) -> None:
        """Let the inline scripts of a page the server serves run (by their hashes)."""
        for source in inline_script_hashes(html):
            if source not in self._script_sources:
                self._script_sources.append(source)
        self._build()

    def _build(self) -> None:
        scripts = " ".join(["'self'", *self._script_sources])
        policy = (
            f"default-src 'self'; script-src {scripts}; style-src 'self' 'unsafe-inline'; "
            "img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; "
            "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
        )
        self._page = (*COMMON, (b"content-security-policy", policy.encode()))

    def for_response(self, headers: list[tuple[bytes, bytes]]) -> tuple[tuple[bytes, bytes], ...]:
        """The headers to add to a response with these headers. One without a body type (a 304
        revalidating a cached page, a 204) gets no policy: a browser would put the policy of a
        304 on the page it revalidated."""
        for name, value in headers:
            if name == b"content-type":
                return self._page if value.startswith(b"text/html") else self._other
        return COMMON
