from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from app.billing.money import MicroAmount

ModelName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128)]


class PriceCreate(BaseModel):
    """A model's price from `effective_from` on (default: now). Amounts are in the site's currency:
    per million tokens, and per call for `per_call`."""

    model_config = ConfigDict(extra="forbid")

    model: ModelName
    channel_id: int | None = Field(
        default=None,
        ge=1,
        description="Set: the price when this channel answers (overrides the model's own)",
    )
    input: MicroAmount
    cached_input: MicroAmount | None = Field(
        default=None, description="Cached input tokens; unset: what input costs"
    )
    output: MicroAmount
    reasoning: MicroAmount | None = Field(
        default=None, description="Reasoning tokens, where billed apart; unset: what output costs"
    )
    per_call: MicroAmount = Field(default=0, description="A fee per answered call")
    effective_from: datetime | None = Field(
        default=None,
        description="From when (default now). Calls keep the cost of the price in force when "
        "they started.",
    )


class PriceRead(BaseModel):
    id: int
    model: str
    channel_id: int | None
    channel_name: str | None
    input: str
    cached_input: str | None
    output: str
    reasoning: str | None
    per_call: str
    effective_from: datetime
    in_force: bool = Field(description="The price calls are charged now")
    created_at: datetime


class PriceList(BaseModel):
    currency: str
    items: list[PriceRead]
    unpriced_models: list[str] = Field(
        description="Models the channels serve that have no price (their calls are not counted "
        "as free: their cost is unknown)"
    )


class ImportResult(BaseModel):
    imported: int
    skipped: int
    errors: list[str] = Field(description="Why entries were skipped (the first 50)")
