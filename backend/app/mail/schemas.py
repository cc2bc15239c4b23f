from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr, field_validator

from app.core.protocol_text import single_line
from app.users.fields import Email

OneLine = Annotated[str, AfterValidator(single_line)]

Security = Literal["starttls", "tls", "none"]


class MailConfigRead(BaseModel):
    host: str
    port: int
    security: Security
    username: str
    password_set: bool = Field(description="Whether a password is stored (it is never returned)")
    password_undecryptable: bool = Field(
        description="The stored password cannot be decrypted with ENCRYPTION_KEYS: enter it again"
    )
    from_address: str
    from_name: str
    source: Literal["admin", "environment"] = Field(
        description="admin: saved here; environment: the SMTP_* variables (until saved here)"
    )
    configured: bool = Field(description="Host and sender are set: mail can be sent")
    updated_at: datetime | None = None


class MailConfigUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str = Field(default="", max_length=253, pattern=r"^[A-Za-z0-9.:\[\]-]*$")
    port: int = Field(default=587, ge=1, le=65535)
    security: Security = "starttls"
    username: OneLine = Field(default="", max_length=254)
    # Omitted: keep the stored password. "" or null: remove it.
    password: SecretStr | None = Field(default=None, max_length=1024)
    from_address: Email | Literal[""] = ""
    from_name: OneLine = Field(default="", max_length=64)

    @field_validator("password")
    @classmethod
    def _one_line_password(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            single_line(value.get_secret_value())
        return value


class TestMailRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    to: Email


class TestMailResult(BaseModel):
    ok: bool
    error: str | None = None
