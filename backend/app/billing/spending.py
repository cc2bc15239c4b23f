"""What has been spent: per user or key in a budget's period (or this month), for the lists and
"My usage"."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.billing import periods
from app.billing.money import nano_text
from app.billing.periods import Period
from app.billing.schemas import BudgetState, KeySpending, Spending
from app.models import ApiKey, UsageDaily, User


def period_of(budget_period: str | None) -> Period:
    """The period spend is shown for: the budget's, else the calendar month."""
    return budget_period if budget_period in periods.PERIODS else "month"


async def spent_by(
    db: AsyncSession, dim: str, subjects: Iterable[tuple[int, Period]], tz: ZoneInfo, now: datetime
) -> dict[int, int]:
    """Nano-units spent by each (id, period) of a dimension ("user" or "key"), in the period
    that `now` is in (from the daily statistics)."""
    today = periods.local_today(tz, now)
    by_start: dict[date | None, list[int]] = {}
    for subject, period in subjects:
        by_start.setdefault(periods.first_day(period, today), []).append(subject)
    spent: dict[int, int] = {}
    for first, ids in by_start.items():
        query = (
            select(UsageDaily.value, func.coalesce(func.sum(UsageDaily.cost), 0))
            .where(UsageDaily.dim == dim, UsageDaily.value.in_([str(i) for i in ids]))
            .group_by(UsageDaily.value)
        )
        if first is not None:
            query = query.where(UsageDaily.day >= first)
        for value, total in (await db.execute(query)).all():
            spent[int(value)] = int(total)
    return spent


def period_label(period: Period, tz: ZoneInfo, now: datetime) -> str:
    return periods.label(period, periods.local_today(tz, now))


async def summary(
    db: AsyncSession, user: User, currency: str, tz: ZoneInfo, now: datetime
) -> Spending:
    """The account's spending: its own and its active keys', with their budgets."""
    keys = (
        await db.scalars(
            select(ApiKey)
            .where(ApiKey.user_id == user.id, ApiKey.revoked_at.is_(None))
            .order_by(ApiKey.id)
        )
    ).all()
    user_period = period_of(user.budget_period)
    spent_user = (await spent_by(db, "user", [(user.id, user_period)], tz, now)).get(user.id, 0)
    key_periods = {key.id: period_of(key.budget_period) for key in keys}
    spent_keys = await spent_by(db, "key", key_periods.items(), tz, now)

    def state(nano: int | None, period: Period, spent: int) -> BudgetState | None:
        if nano is None:
            return None
        return BudgetState(
            limit=nano_text(nano),
            period=period,
            period_label=period_label(period, tz, now),
            spent=nano_text(spent),
            left=nano_text(max(nano - spent, 0)),
        )

    return Spending(
        currency=currency,
        spent=nano_text(spent_user),
        period_label=period_label(user_period, tz, now),
        budget=state(user.budget_nano, user_period, spent_user),
        balance=None if user.balance_nano is None else nano_text(user.balance_nano),
        keys=[
            KeySpending(
                id=key.id,
                name=key.name,
                budget=state(key.budget_nano, key_periods[key.id], spent_keys.get(key.id, 0)),
                spent=nano_text(spent_keys.get(key.id, 0)),
                period_label=period_label(key_periods[key.id], tz, now),
            )
            for key in keys
        ],
    )


async def fill_spent(
    db: AsyncSession, dim: str, items: Sequence[Any], tz: ZoneInfo, now: datetime
) -> None:
    """Set `spent` and `spent_period` on read models of users or keys (with `id` and
    `budget_period`): each one's spend in its budget's period, else this month."""
    periods = {item.id: period_of(item.budget_period) for item in items}
    spent = await spent_by(db, dim, periods.items(), tz, now)
    for item in items:
        item.spent = nano_text(spent.get(item.id, 0))
        item.spent_period = period_label(periods[item.id], tz, now)
