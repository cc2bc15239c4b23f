from __future__ import annotations

from pydantic import BaseModel, Field


class Totals(BaseModel):
    calls: int
    errors: int
    error_rate: float
    prompt_tokens: int
    completion_tokens: int
    reasoning_tokens: int
    total_tokens: int
    avg_ttft_ms: int | None
    avg_duration_ms: int | None
    cost: str = Field(
        description="Spend in the site's currency (a decimal string), of the calls with a price"
    )
    unpriced_calls: int = Field(
        description="Calls of models without a price: their cost is unknown, not in `cost`"
    )


class Span(Totals):
    start: str = Field(description="First day (site time zone), inclusive")
    end: str = Field(description="Last day, inclusive")


class Period(Span):
    previous: Span = Field(description="The span of the same length just before")
    change_percent: dict[str, float | None] = Field(
        description="calls, total_tokens, errors: change against `previous` (null: nothing before)"
    )


class Overview(BaseModel):
    timezone: str
    today: str
    periods: dict[str, Period] = Field(description="today, week (last 7 days), month (last 30)")


class DayTotals(Totals):
    day: str


class Trend(BaseModel):
    timezone: str
    days: int
    series: list[DayTotals]


class ModelShare(Totals):
    model: str
    call_share: float
    token_share: float
    cost_share: float


class ModelShares(BaseModel):
    timezone: str
    start: str
    end: str
    items: list[ModelShare]


class ActiveUsers(BaseModel):
    timezone: str
    today: int
    last_7_days: int
    last_30_days: int


class TopEntry(Totals):
    id: int
    name: str | None
    user_id: int | None = Field(default=None, description="For keys: the owner")


class TopList(BaseModel):
    timezone: str
    start: str
    end: str
    items: list[TopEntry]


class ChannelHealth(Totals):
    channel_id: int
    name: str | None
    success_rate: float | None
    p50_ms: int | None
    p95_ms: int | None
    ttft_p50_ms: int | None
    ttft_p95_ms: int | None


class ChannelHealthList(BaseModel):
    timezone: str
    start: str
    end: str
    items: list[ChannelHealth]


class BlockedAddress(BaseModel):
    ip: str
    count: int
    rule: str | None
    first_seen: str | None
    last_seen: str | None


class BlockedList(BaseModel):
    timezone: str
    since: str
    total: int
    items: list[BlockedAddress]
