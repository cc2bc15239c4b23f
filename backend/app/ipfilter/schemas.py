from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from app.core.instants import Instant

Reason = Annotated[str, StringConstraints(strip_whitespace=True, max_length=255)]
CidrText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]


class IPRuleCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cidr: CidrText = Field(
        description="An address (203.0.113.7, 2001:db8::1) or a CIDR range (203.0.113.0/24)"
    )
    reason: Reason = ""
    expires_at: Instant | None = Field(default=None, description="Must be in the future")
    enabled: bool = True
    confirm: bool = Field(
        default=False,
        description="Required for a rule matching every address or your own address",
    )


class IPRuleUpdate(BaseModel):
    """Omitted fields stay as they are."""

    model_config = ConfigDict(extra="forbid")

    reason: Reason | None = None
    expires_at: Instant | None = None
    enabled: bool | None = None
    confirm: bool = False


class IPRuleRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    cidr: str
    reason: str
    enabled: bool
    expires_at: datetime | None
    active: bool = Field(
        default=False, description="Enabled and not expired: requests from it are refused now"
    )
    created_at: datetime
    updated_at: datetime
    created_by_id: int | None
    created_by: str | None


class BlockedAttemptRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    ip: str
    rule_id: int
    rule_cidr: str
    count: int
    first_seen: datetime
    last_seen: datetime
    last_path: str
    last_user_agent: str
