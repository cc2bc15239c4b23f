from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.users.fields import DisplayName, Email, GivenPassword, NewPassword, Username
from app.users.schemas import UserRead


class RegisterRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: Username
    password: NewPassword
    email: Email | None = None
    display_name: DisplayName | None = None


class LoginRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=1, max_length=254, description="Username or e-mail address")
    password: GivenPassword


class TokenResponse(BaseModel):
    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105
    expires_in: int = Field(description="Seconds until the access token expires")
    user: UserRead


class RefreshRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    refresh_token: str = Field(min_length=1, max_length=4096)


class MeUpdate(BaseModel):
    """Omitted fields stay as they are; `null` clears them."""

    model_config = ConfigDict(extra="forbid")

    email: Email | None = None
    display_name: DisplayName | None = None


class PasswordChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    current_password: GivenPassword
    new_password: NewPassword
    revoke_api_keys: bool = Field(
        default=False, description="Also revoke every API key of the account"
    )


class SessionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    created_at: datetime
    last_used_at: datetime
    expires_at: datetime
    client_ip: str | None
    user_agent: str | None
    current: bool = False


class TwoFactorChallengeResponse(BaseModel):
    """The password was right; finish with `POST /api/auth/login/2fa`."""

    two_factor_required: Literal[True] = True
    challenge_token: str
    expires_in: int = Field(description="Seconds the challenge stays valid")


Code = Annotated[str, Field(min_length=6, max_length=16, examples=["123456"])]
RecoveryCodeText = Annotated[str, Field(min_length=8, max_length=32, examples=["abcd-efgh-jkmn"])]


class TwoFactorLogin(BaseModel):
    """A code from the authenticator app, or one of the recovery codes."""

    model_config = ConfigDict(extra="forbid")

    challenge_token: str = Field(min_length=1, max_length=4096)
    code: Code | None = None
    recovery_code: RecoveryCodeText | None = None

    @model_validator(mode="after")
    def _one_factor(self) -> TwoFactorLogin:
        if (self.code is None) == (self.recovery_code is None):
            raise ValueError("give either code or recovery_code")
        return self


class TwoFactorSetup(BaseModel):
    """Scan the QR code (or type the secret) into an authenticator app, then confirm a code."""

    secret: str
    otpauth_uri: str
    qr_svg_data_uri: str = Field(description="The otpauth URI as a QR code (an SVG data URI)")


class TwoFactorBegin(BaseModel):
    model_config = ConfigDict(extra="forbid")

    password: GivenPassword


class TwoFactorCode(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: Code


class TwoFactorDisable(BaseModel):
    model_config = ConfigDict(extra="forbid")

    password: GivenPassword
    code: Code | None = None
    recovery_code: RecoveryCodeText | None = None


class RecoveryCodes(BaseModel):
    codes: list[str] = Field(description="Shown only in this response: each works once")


class TwoFactorStatus(BaseModel):
    enabled: bool
    recovery_codes_left: int


class LinkToken(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: str = Field(min_length=1, max_length=128)


class PasswordResetRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: Email


class PasswordResetConfirm(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: str = Field(min_length=1, max_length=128)
    new_password: NewPassword
    revoke_api_keys: bool = Field(
        default=False,
        description="Also revoke every API key of the account (they keep working otherwise)",
    )


class Accepted(BaseModel):
    detail: str
