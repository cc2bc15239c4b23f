from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, StringConstraints

from app.billing.money import CostText, MicroAmount, NanoAmount
from app.billing.periods import Period
from app.core.instants import InstantOrUTC

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
    max_output_tokens: int | None = Field(
        default=None,
        ge=1,
        le=10_000_000,
        description="The most tokens one answer can have: what a call without max_tokens "
        "reserves against a budget (unset: the runtime setting budget_output_tokens)",
    )
    effective_from: InstantOrUTC | None = Field(
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
    max_output_tokens: int | None
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


class BudgetFields(BaseModel):
    """A spending budget, on a user or an API key: `budget` per `budget_period`; `budget: null`
    removes it."""

    budget: NanoAmount | None = Field(
        default=None, description="The most to spend per period, in the site's currency"
    )
    budget_period: Period | None = Field(
        default=None, description="day, week (Monday first), month or total (default month)"
    )


def apply_budget(target: Any, changes: dict[str, Any]) -> bool:
    """Set `budget` / `budget_period` from an update's explicit fields on a user or a key;
    whether anything changed."""
    if "budget" not in changes and "budget_period" not in changes:
        return False
    if "budget" in changes and changes["budget"] is None:
        target.budget_nano, target.budget_period = None, None
        return True
    if changes.get("budget") is not None:
        target.budget_nano = changes["budget"]
    if changes.get("budget_period") is not None:
        target.budget_period = changes["budget_period"]
    if target.budget_nano is not None and target.budget_period is None:
        target.budget_period = "month"
    return True


BUDGET_READ = AliasChoices("budget_nano", "budget")
BALANCE_READ = AliasChoices("balance_nano", "balance")


class BalanceChange(BaseModel):
    """Top up (a positive amount) or take away (negative) from a user's prepaid balance; the
    first top-up starts the balance, and from then on the user's calls are paid from it."""

    model_config = ConfigDict(extra="forbid")

    amount: Annotated[str, StringConstraints(pattern=r"^-?\d+(\.\d{1,9})?$", max_length=24)] = (
        Field(description="In the site's currency, e.g. 50 or -2.5")
    )
    note: Annotated[str, StringConstraints(strip_whitespace=True, max_length=255)] = ""


class BalanceEntryRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    user_id: int
    amount: CostText = Field(validation_alias=AliasChoices("amount_nano", "amount"))
    kind: str = Field(description="topup, adjust (by an admin) or code (a redeemed code)")
    note: str
    created_by_id: int | None
    code_id: int | None
    balance_after: CostText = Field(
        validation_alias=AliasChoices("balance_after_nano", "balance_after")
    )
    created_at: datetime


class CodesCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    count: int = Field(ge=1, le=1000)
    amount: NanoAmount = Field(description="What each code adds to a balance")
    batch: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
    expires_at: InstantOrUTC | None = Field(default=None, description="Unset: never")


class CodesCreated(BaseModel):
    batch: str
    codes: list[str] = Field(description="Shown only in this response: hand them out now")


class CodeRead(BaseModel):
    id: int
    hint: str = Field(description="The code's last characters")
    amount: str
    batch: str
    status: str = Field(description="unused, redeemed, expired or disabled")
    expires_at: datetime | None
    created_at: datetime
    redeemed_by_id: int | None
    redeemed_at: datetime | None


class Redeem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]


class BudgetState(BaseModel):
    limit: str
    period: str
    period_label: str = Field(description="Which period: 2026-12-05, 2026-W49, 2026-12, total")
    spent: str
    left: str


class KeySpending(BaseModel):
    id: int
    name: str
    budget: BudgetState | None
    spent: str = Field(description="In the key's budget period, else this month")
    period_label: str


class Spending(BaseModel):
    """What the caller has spent, what their budgets allow, and what is left of their balance."""

    currency: str
    spent: str = Field(description="In the account's budget period, else this month")
    period_label: str
    budget: BudgetState | None
    balance: str | None = Field(description="Prepaid balance left (null: none)")
    keys: list[KeySpending]
