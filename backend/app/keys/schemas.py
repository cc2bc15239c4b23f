from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from app.billing.money import CostText
from app.billing.schemas import BudgetFields
from app.core.instants import InstantOrUTC

MAX_MODELS_PER_KEY = 200

ModelName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128)]
KeyName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]


def _dedupe(models: list[str] | None) -> list[str] | None:
    if models is None:
        return None
    return list(dict.fromkeys(models))


ModelList = Annotated[
    list[ModelName] | None, Field(max_length=MAX_MODELS_PER_KEY), AfterValidator(_dedupe)
]
KeyRpm = Annotated[
    int | None,
    Field(ge=1, le=1_000_000, description="Calls per minute with this key; null: no key limit"),
]
KeyStreams = Annotated[
    int | None,
    Field(ge=1, le=10_000, description="Calls running at once with this key; null: no key limit"),
]


class ApiKeyCreate(BudgetFields):
    model_config = ConfigDict(extra="forbid")

    name: KeyName
    expires_at: InstantOrUTC | None = Field(default=None, description="Must be in the future")
    models: ModelList = Field(
        default=None, description="Allowed public model names; omit or null for every model"
    )
    rpm_limit: KeyRpm = None
    concurrent_streams_limit: KeyStreams = None


class ApiKeyUpdate(BudgetFields):
    """Omitted fields stay as they are."""

    model_config = ConfigDict(extra="forbid")

    name: KeyName | None = None
    expires_at: InstantOrUTC | None = None
    models: ModelList = None
    rpm_limit: KeyRpm = None
    concurrent_streams_limit: KeyStreams = None


KeyStatus = Literal["active", "expired", "revoked"]


class ApiKeyRead(BaseModel):
    id: int
    user_id: int
    name: str
    prefix: str
    last4: str
    masked: str = Field(description="How the key is shown in lists, e.g. sk-AbCd…wxyz")
    models: list[str] | None
    rpm_limit: int | None
    concurrent_streams_limit: int | None
    budget: CostText = Field(
        default=None, description="The most this key may spend per budget_period (null: none)"
    )
    budget_period: str | None = None
    spent: str | None = Field(
        default=None, description="Spend in the budget's period, else this month (in lists)"
    )
    spent_period: str | None = Field(default=None, description="Which period `spent` is for")
    status: KeyStatus
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None


class ApiKeyCreated(ApiKeyRead):
    key: str = Field(description="The full key. Shown only in this response; store it now.")


class AdminApiKeyRead(ApiKeyRead):
    username: str
