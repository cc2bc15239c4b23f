from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from app.billing.money import CostText
from app.billing.schemas import BALANCE_READ, BUDGET_READ, BudgetFields
from app.models import UserRole, UserStatus
from app.users.fields import DisplayName, Email, NewPassword, Username


class UserRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    username: str
    email: str | None
    display_name: str | None
    role: UserRole
    status: UserStatus
    email_verified: bool = Field(
        description="The e-mail address was confirmed through a mailed link"
    )
    avatar_url: str | None = Field(description="The avatar image (its URL changes with it)")
    two_factor_enabled: bool
    created_at: datetime
    last_login_at: datetime | None
    rpm_limit: int | None = Field(description="Override of default_user_rpm (null: the default)")
    concurrent_streams_limit: int | None = Field(
        description="Override of default_user_concurrent_streams (null: the default)"
    )
    budget: CostText = Field(
        default=None,
        validation_alias=BUDGET_READ,
        description="The most the account may spend per budget_period (null: no budget)",
    )
    budget_period: str | None = None
    spent: str | None = Field(
        default=None, description="Spend in the budget's period, else this month (in lists)"
    )
    spent_period: str | None = Field(default=None, description="Which period `spent` is for")
    balance: CostText = Field(
        default=None,
        validation_alias=BALANCE_READ,
        description="What is left of the prepaid balance (null: calls are not paid from one)",
    )


class UserCreate(BaseModel):
    """An admin creating an account."""

    model_config = ConfigDict(extra="forbid")

    username: Username
    password: NewPassword
    email: Email | None = None
    display_name: DisplayName | None = None
    role: UserRole = UserRole.USER
    status: UserStatus = UserStatus.ACTIVE


class UserUpdate(BudgetFields):
    """An admin editing an account. Omitted fields stay as they are; `null` clears email/name."""

    model_config = ConfigDict(extra="forbid")

    email: Email | None = None
    display_name: DisplayName | None = None
    role: UserRole | None = None
    status: UserStatus | None = None
    email_verified: bool | None = Field(
        default=None, description="Mark the address as confirmed (or not) without a mailed link"
    )
    rpm_limit: int | None = Field(
        default=None, ge=0, le=1_000_000, description="null: the default; 0: no limit"
    )
    concurrent_streams_limit: int | None = Field(
        default=None, ge=0, le=10_000, description="null: the default; 0: no limit"
    )


class PasswordResetByAdmin(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Omit to have a strong password generated and returned once.
    password: NewPassword | None = None
    revoke_api_keys: bool = Field(default=False, description="Also revoke the user's API keys")


class PasswordResetResult(BaseModel):
    password: str | None = Field(
        default=None, description="The generated password, shown only in this response."
    )
    api_keys_revoked: int = 0


class SignOutEverywhere(BaseModel):
    model_config = ConfigDict(extra="forbid")

    revoke_api_keys: bool = Field(default=False, description="Also revoke the user's API keys")


class SignedOut(BaseModel):
    api_keys_revoked: int
