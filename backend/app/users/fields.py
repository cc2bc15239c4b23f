"""Field types for account data, with messages a person can act on."""

from __future__ import annotations

import re
import unicodedata
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, EmailStr, Field, SecretStr
from pydantic_core import PydanticCustomError

PASSWORD_MIN_CHARS = 8
PASSWORD_MAX_CHARS = 256
USERNAME_MIN_CHARS = 2
USERNAME_MAX_CHARS = 32
# Letters and digits of any script (Chinese names included), plus "_", "-" and ".".
_USERNAME_RE = re.compile(r"^[\w.-]+$")


def username_key(username: str) -> str:
    """The form usernames are compared in: "Alice", "alice" and "ａｌｉｃｅ" are one account."""
    return unicodedata.normalize("NFKC", username).casefold()


def check_username(value: str) -> str:
    value = unicodedata.normalize("NFKC", value.strip())
    if len(value) < USERNAME_MIN_CHARS or len(value) > USERNAME_MAX_CHARS:
        raise PydanticCustomError(
            "username_length",
            "Username must be {min} to {max} characters",
            {"min": USERNAME_MIN_CHARS, "max": USERNAME_MAX_CHARS},
        )
    if not _USERNAME_RE.match(value):
        raise PydanticCustomError(
            "username_chars", "Username may contain only letters, digits, '_', '-' and '.'"
        )
    if value.isdigit():
        raise PydanticCustomError("username_digits", "Username cannot be only digits")
    return value


def _check_new_password(value: Any) -> SecretStr:
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if not isinstance(value, str):
        raise PydanticCustomError("password_type", "Password must be a string")
    if not value.strip():
        raise PydanticCustomError("password_empty", "Password must not be empty or only spaces")
    if len(value) < PASSWORD_MIN_CHARS:
        raise PydanticCustomError(
            "password_too_short",
            "Password must be at least {min} characters",
            {"min": PASSWORD_MIN_CHARS},
        )
    if len(value) > PASSWORD_MAX_CHARS:
        raise PydanticCustomError(
            "password_too_long",
            "Password must be at most {max} characters",
            {"max": PASSWORD_MAX_CHARS},
        )
    return SecretStr(value)


def _check_given_password(value: Any) -> SecretStr:
    """A password being checked (login, confirm): any non-empty string up to a sane size."""
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if not isinstance(value, str) or not value:
        raise PydanticCustomError("password_empty", "Password is required")
    if len(value) > PASSWORD_MAX_CHARS * 4:
        raise PydanticCustomError("password_too_long", "Password is too long")
    return SecretStr(value)


def _lower_email(value: str) -> str:
    return value.strip().lower()


Username = Annotated[
    str,
    Field(min_length=1, max_length=64, examples=["alice"]),
    AfterValidator(check_username),
]
NewPassword = Annotated[SecretStr, BeforeValidator(_check_new_password)]
GivenPassword = Annotated[SecretStr, BeforeValidator(_check_given_password)]
Email = Annotated[EmailStr, Field(max_length=254), AfterValidator(_lower_email)]
DisplayName = Annotated[str, Field(min_length=1, max_length=64)]
