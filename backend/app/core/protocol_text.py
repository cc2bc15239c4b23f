"""Text an admin types that ends up inside a protocol line: an HTTP header, an SMTP command or a
mail header.

A line break there starts a new header or command (a channel key with CR/LF made the HTTP client
raise on every call to the channel: a 500 on fetch-models), so such values are refused at the
schema, with a 422 naming the field, instead of failing — or injecting — later.
"""

from __future__ import annotations

import unicodedata

from pydantic import SecretStr

# Unicode's line and paragraph separators end a line for some parsers too.
_LINE_BREAKING = {"Cc", "Zl", "Zp"}


def single_line(value: str) -> str:
    """No control characters (CR, LF, NUL, tab …) and no line or paragraph separators."""
    if any(unicodedata.category(ch) in _LINE_BREAKING for ch in value):
        raise ValueError("must be one line, without control characters")
    return value


def header_token(value: SecretStr) -> SecretStr:
    """A secret sent in an HTTP header (`Authorization: Bearer …`): visible ASCII only, once the
    spaces and line breaks around it (a copy-and-paste habit) are taken off."""
    text = value.get_secret_value().strip()
    if not text or any(not ("!" <= ch <= "~") for ch in text):
        raise ValueError("must be printable ASCII without spaces or line breaks")
    return SecretStr(text)
