"""Budget periods: a calendar day, an ISO week (Monday first), a calendar month — in the site's
time zone, as the daily statistics are — or no period at all (`total`)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

Period = Literal["day", "week", "month", "total"]
PERIODS: tuple[Period, ...] = ("day", "week", "month", "total")


def local_today(tz: ZoneInfo, now: datetime) -> date:
    return now.astimezone(tz).date()


def first_day(period: Period, today: date) -> date | None:
    """The period's first day (None for `total`: every day counts)."""
    if period == "day":
        return today
    if period == "week":
        return today - timedelta(days=today.weekday())
    if period == "month":
        return today.replace(day=1)
    return None


def next_first_day(period: Period, today: date) -> date | None:
    """The first day of the next period (None for `total`)."""
    start = first_day(period, today)
    if start is None:
        return None
    if period == "day":
        return start + timedelta(days=1)
    if period == "week":
        return start + timedelta(days=7)
    return (start.replace(day=28) + timedelta(days=4)).replace(day=1)


def label(period: Period, today: date) -> str:
    """A name for the period `today` is in: 2026-12-05, 2026-W49, 2026-12, total."""
    if period == "day":
        return today.isoformat()
    if period == "week":
        year, week, _ = today.isocalendar()
        return f"{year}-W{week:02d}"
    if period == "month":
        return f"{today:%Y-%m}"
    return "total"
