from __future__ import annotations

from datetime import date

from sqlalchemy import BigInteger, Date, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base


class UsageDaily(Base):
    """Call-log totals per local day (the site's time zone) and one dimension.

    `dim` is `all` (value ""), `model`, `channel`, `user`, `key` or `source`; `value` is the model
    name or the id as text. Kept up to date by the call-log writer in the same transaction as the
    rows themselves, so the dashboard reads O(days × values), never the raw logs. Rebuildable from
    the logs (`python -m app rebuild-stats`); outlives the logs' retention.
    """

    __tablename__ = "usage_daily"
    __table_args__ = (Index("ix_usage_daily_dim_day", "dim", "day"),)

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    dim: Mapped[str] = mapped_column(String(8), primary_key=True)
    value: Mapped[str] = mapped_column(String(128), primary_key=True)
    calls: Mapped[int] = mapped_column(Integer, default=0)
    errors: Mapped[int] = mapped_column(Integer, default=0)
    prompt_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    completion_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    reasoning_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    cached_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    total_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    ttft_sum_ms: Mapped[int] = mapped_column(BigInteger, default=0)
    ttft_count: Mapped[int] = mapped_column(Integer, default=0)
    duration_sum_ms: Mapped[int] = mapped_column(BigInteger, default=0)
    # Nano-units of the site's currency; calls of models without a price are counted apart.
    cost: Mapped[int] = mapped_column(BigInteger, default=0)
    unpriced_calls: Mapped[int] = mapped_column(Integer, default=0)


class LatencyDaily(Base):
    """Per local day and channel: how many calls fell in each latency bucket (for percentiles).

    `kind` is `duration` (the whole call) or `ttft` (time to the first token); `bucket` indexes
    `app.stats.rollup.LATENCY_BOUNDS_MS`.
    """

    __tablename__ = "latency_daily"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    channel_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(8), primary_key=True)
    bucket: Mapped[int] = mapped_column(Integer, primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)
