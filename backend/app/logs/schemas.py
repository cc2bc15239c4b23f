from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from app.billing.money import CostText
from app.logs.public_errors import public_error


class UsageRecord(BaseModel):
    """One call as its caller sees it: no channel internals, and a provider's failure in plain
    words (`for_caller`); admins get `CallLogRecord`, with everything."""

    model_config = ConfigDict(from_attributes=True)

    @classmethod
    def for_caller(cls, row: Any) -> UsageRecord:
        record = cls.model_validate(row)
        record.error_message = public_error(
            record.end_reason, record.status_code, record.error_message
        )
        return record

    id: int
    created_at: datetime
    request_id: str
    source: str
    api_key_id: int | None
    api_key_name: str | None
    client_ip: str | None
    requested_model: str
    stream: bool
    status_code: int
    success: bool
    end_reason: str
    error_message: str | None
    prompt_tokens: int
    completion_tokens: int
    reasoning_tokens: int
    cached_tokens: int
    total_tokens: int
    usage_source: str
    ttft_ms: int | None
    duration_ms: int
    cost: CostText = Field(
        default=None,
        description="In the site's currency (a decimal string); null: the model had no price",
    )


class CallLogRecord(UsageRecord):
    user_id: int | None
    username: str | None
    upstream_model: str | None
    channel_id: int | None
    channel_name: str | None
    channels_tried: list[int]


class LogPage(BaseModel):
    items: list[CallLogRecord]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next (older) page")


class UsagePage(BaseModel):
    items: list[UsageRecord]
    next_cursor: str | None


class LogTotals(BaseModel):
    requests: int
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    errors: int = Field(description="Calls that ended in upstream_error, timeout or rejected")
    cost: str = Field(default="0", description="Spend of the calls with a price")
    unpriced_calls: int = Field(default=0, description="Calls whose model had no price")
