"""Near-the-limit notices: a budget 80 % and 100 % spent, a balance 80 % used and empty.

Found from the daily statistics (`due`), once per subject, period and level: each is recorded in
`spend_alerts` in the transaction that queues its mails, so however many processes look, one
sends it (the others' insert of the same row fails and their transaction rolls back).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.billing.spending import period_label, period_of, spent_by
from app.models import ApiKey, BalanceEntry, SpendAlert, User

LEVELS = (100, 80)


@dataclass(frozen=True)
class Alert:
    subject: str  # user:5, key:9, balance:5
    period: str
    level: int  # percent used
    user_id: int  # who is told (with the admins)
    kind: str  # budget | key_budget | balance
    spent: int  # nano-units
    limit: int
    key_name: str | None = None


def _level(spent: int, limit: int) -> int | None:
    if limit <= 0:
        return None
    for level in LEVELS:
        if spent * 100 >= limit * level:
            return level
    return None


async def due(db: AsyncSession, tz: ZoneInfo, now: datetime) -> list[Alert]:
    """Every alert reached and not sent yet, recorded as sent (in `db`'s transaction)."""
    found: list[Alert] = []
    users = (await db.execute(select(User).where(User.budget_nano.is_not(None)))).scalars().all()
    periods = {user.id: period_of(user.budget_period) for user in users}
    spent = await spent_by(db, "user", periods.items(), tz, now)
    for user in users:
        assert user.budget_nano is not None
        level = _level(spent.get(user.id, 0), user.budget_nano)
        if level is not None:
            found.append(
                Alert(
                    f"user:{user.id}",
                    period_label(periods[user.id], tz, now),
                    level,
                    user.id,
                    "budget",
                    spent.get(user.id, 0),
                    user.budget_nano,
                )
            )
    keys = (
        (
            await db.execute(
                select(ApiKey).where(ApiKey.budget_nano.is_not(None), ApiKey.revoked_at.is_(None))
            )
        )
        .scalars()
        .all()
    )
    key_periods = {key.id: period_of(key.budget_period) for key in keys}
    key_spent = await spent_by(db, "key", key_periods.items(), tz, now)
    for key in keys:
        assert key.budget_nano is not None
        level = _level(key_spent.get(key.id, 0), key.budget_nano)
        if level is not None:
            found.append(
                Alert(
                    f"key:{key.id}",
                    period_label(key_periods[key.id], tz, now),
                    level,
                    key.user_id,
                    "key_budget",
                    key_spent.get(key.id, 0),
                    key.budget_nano,
                    key.name,
                )
            )
    # A balance: what was credited since it started against what is left; a top-up starts a new
    # "period" (so the next 80 % and empty are told again).
    credited = (
        await db.execute(
            select(
                BalanceEntry.user_id,
                func.sum(BalanceEntry.amount_nano),
                func.max(BalanceEntry.id),
            ).group_by(BalanceEntry.user_id)
        )
    ).all()
    lefts = dict(
        (
            await db.execute(
                select(User.id, User.balance_nano).where(
                    User.id.in_([row[0] for row in credited]), User.balance_nano.is_not(None)
                )
            )
        ).all()
    )
    for user_id, total, last in credited:
        if user_id not in lefts:
            continue
        left = int(lefts[user_id] or 0)
        level = _level(int(total) - left, int(total))
        if level is not None:
            found.append(
                Alert(
                    f"balance:{user_id}",
                    f"after-{last}",
                    level,
                    user_id,
                    "balance",
                    int(total) - left,
                    int(total),
                )
            )
    if not found:
        return []
    sent = set(
        (
            await db.execute(
                select(SpendAlert.subject, SpendAlert.period, SpendAlert.level).where(
                    SpendAlert.subject.in_({alert.subject for alert in found})
                )
            )
        ).all()
    )
    new = []
    for alert in found:
        # 100 % reached at once: 80 % is not told as well.
        told = (alert.subject, alert.period, alert.level) in sent or (
            alert.level == 80 and (alert.subject, alert.period, 100) in sent
        )
        if not told:
            new.append(alert)
            db.add(SpendAlert(subject=alert.subject, period=alert.period, level=alert.level))
    await db.flush()
    return new
