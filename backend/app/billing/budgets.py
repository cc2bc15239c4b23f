"""Which limits a call is held to, what it may cost at most, and where a claim starts from.

A caller may have a budget of their own (per day, week, month or in total), their API key one,
and a prepaid balance; each is a `Claim` on the ledger. A call reserves its worst case against
all of them: its prompt's tokens bounded from above (text by its UTF-8 bytes, every token being
at least one byte; an image or a file by a fixed allowance), plus its output limit (`max_tokens`
and its kin, else the model's output cap from its price, else the runtime default), at the
highest price any channel serving the model charges. The real cost replaces it when the call
ends.
"""

from __future__ import annotations

import calendar
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.billing import periods
from app.billing.ledger import Claim, Hold, Ledger, Reservation
from app.billing.money import to_nano
from app.billing.periods import Period
from app.billing.prices import Price, PriceBook
from app.core.errors import ForbiddenError
from app.models import UsageDaily, User

IMAGE_TOKENS = 2_000  # more than a high-detail image costs with the major providers
PER_MESSAGE_TOKENS = 8
OUTPUT_FIELDS = ("max_completion_tokens", "max_tokens", "max_output_tokens")
WHAT = {"day": "daily", "week": "weekly", "month": "monthly", "total": "total"}


@dataclass(frozen=True, slots=True)
class Budget:
    nano: int
    period: Period

    @classmethod
    def of(cls, nano: int | None, period: str | None) -> Budget | None:
        if nano is None or period not in periods.PERIODS:
            return None
        return cls(nano, period)


def default_budget(amount: str, period: str) -> Budget | None:
    """The budget new accounts get (runtime settings default_user_budget and its period)."""
    return Budget.of(to_nano(amount), period) if amount else None


@dataclass(frozen=True, slots=True)
class Spender:
    """What a call's caller is held to."""

    user_id: int
    key_id: int | None = None
    user_budget: Budget | None = None
    key_budget: Budget | None = None
    balance: bool = False

    @property
    def held(self) -> bool:
        return self.balance or self.user_budget is not None or self.key_budget is not None


Pending = Callable[[str, int], int]  # (dim "user" | "key", id) → costs queued, not yet written


class SpendSource:
    """Where a claim starts: the period's spend from the daily statistics (plus what this
    process has not written yet), or the balance left."""

    def __init__(
        self, sessionmaker: async_sessionmaker[AsyncSession], pending: Pending | None = None
    ) -> None:
        self._sessions = sessionmaker
        self._pending = pending

    async def spent(self, dim: str, subject: int, first: date | None) -> int:
        query = select(func.coalesce(func.sum(UsageDaily.cost), 0)).where(
            UsageDaily.dim == dim, UsageDaily.value == str(subject)
        )
        if first is not None:
            query = query.where(UsageDaily.day >= first)
        async with self._sessions() as db:
            total = int(await db.scalar(query) or 0)
        return total + (self._pending(dim, subject) if self._pending else 0)

    async def balance(self, user_id: int) -> int:
        async with self._sessions() as db:
            left = await db.scalar(select(User.balance_nano).where(User.id == user_id))
        return int(left or 0) - (self._pending("balance", user_id) if self._pending else 0)


def balance_key(user_id: int) -> str:
    return f"balance:{user_id}"


class Budgets:
    def __init__(
        self,
        ledger: Ledger,
        prices: PriceBook,
        source: SpendSource,
        tz: ZoneInfo,
        default_output: Callable[[], int],
    ) -> None:
        self.ledger = ledger
        self._prices = prices
        self._source = source
        self._tz = tz
        self._default_output = default_output

    def claims(self, spender: Spender, now: datetime) -> list[Claim]:
        today = periods.local_today(self._tz, now)
        claims = []
        for dim, subject, budget, whose in (
            ("user", spender.user_id, spender.user_budget, "your account's"),
            ("key", spender.key_id, spender.key_budget, "this API key's"),
        ):
            if budget is None or subject is None:
                continue
            claims.append(
                Claim(
                    key=f"{dim}:{subject}:{periods.label(budget.period, today)}",
                    limit=budget.nano,
                    what=f"{whose} {WHAT[budget.period]} budget",
                    load=self._spent_loader(dim, subject, periods.first_day(budget.period, today)),
                    forget_at=self._forget_at(budget.period, today),
                )
            )
        if spender.balance:
            user_id = spender.user_id
            claims.append(
                Claim(
                    key=balance_key(user_id),
                    limit=None,
                    what="your balance",
                    load=lambda: self._source.balance(user_id),
                    forget_at=0,
                )
            )
        return claims

    def _spent_loader(
        self, dim: str, subject: int, first: date | None
    ) -> Callable[[], Awaitable[int]]:
        return lambda: self._source.spent(dim, subject, first)

    def _forget_at(self, period: Period, today: date) -> float:
        following = periods.next_first_day(period, today)
        if following is None:
            return 0
        ends = datetime.combine(following, time(), self._tz)
        return calendar.timegm(ends.utctimetuple()) + 86_400  # a day's grace

    def worst_price(self, model: str, channel_ids: Sequence[int], now: datetime) -> Price | None:
        """The highest price of each kind among the channels that may answer (None if any of
        them would leave the call unpriced)."""
        found = []
        for channel_id in channel_ids or (None,):
            price = self._prices.price(model, channel_id, now)
            if price is None:
                return None
            found.append(price)
        return Price(
            input=max(max(p.input, p.cached_input) for p in found),
            cached_input=0,
            output=max(max(p.output, p.reasoning) for p in found),
            reasoning=0,
            call=max(p.call for p in found),
        )

    def worst_case(self, price: Price, request: Any, output_cap: int | None) -> tuple[int, int]:
        """(nano-units a request can cost at most, the output tokens that covers when the request
        itself sets no limit — 0 when it does: the provider stops the answer there)."""
        prompt = prompt_bound(request.messages, request.native.body if request.native else None)
        body = request.native.body if request.native and not request.messages else request.body
        asked = output_limit(body)
        output = asked or output_cap or self._default_output()
        choices = body.get("n") if isinstance(body.get("n"), int) else 1
        output *= max(choices, 1)
        if request.endpoint == "/embeddings":
            output = asked = 0
        return price.cost(prompt, 0, output, 0, answered=True), 0 if asked else output

    def reservation(
        self,
        spender: Spender,
        request: Any,
        channel_ids: Sequence[int],
        now: datetime,
    ) -> Reservation | None:
        """What the call must reserve, and against which claims (None: nothing to hold it to).
        Raises 403 if the model has no price (a budget could not hold)."""
        if not spender.held:
            return None
        price = self.worst_price(request.model, channel_ids, now)
        if price is None:
            raise ForbiddenError(
                f"The model '{request.model}' has no price, and your spending is limited: ask "
                "an administrator to set its price",
                code="model_unpriced",
                param="model",
            )
        amount, output = self.worst_case(price, request, self._prices.output_cap(request.model))
        return Reservation(self.claims(spender, now), amount, output)

    def settle(self, hold: Hold, cost: int | None) -> Coroutine[Any, Any, None] | None:
        """The call ended: its real cost (the reservation if unknown) replaces what it held."""
        return self.ledger.settle(hold, hold.amount if cost is None else cost)


def output_limit(body: dict[str, Any]) -> int | None:
    for name in OUTPUT_FIELDS:
        value = body.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def prompt_bound(messages: Sequence[Any], native: dict[str, Any] | None = None) -> int:
    """At least as many tokens as the prompt can have."""
    if not messages and native is not None:
        return _bound(native)
    return sum(PER_MESSAGE_TOKENS + _bound(message) for message in messages)


def _bound(value: Any) -> int:
    if isinstance(value, str):
        return len(value.encode())
    if isinstance(value, dict):
        kind = value.get("type")
        if kind in ("image_url", "input_image", "image") or "inlineData" in value:
            return IMAGE_TOKENS
        return sum(_bound(item) for item in value.values())
    if isinstance(value, list):
        return sum(_bound(item) for item in value)
    if value is None or isinstance(value, bool | int | float):
        return 1
    return len(orjson.dumps(value))
