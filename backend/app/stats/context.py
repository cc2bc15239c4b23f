"""What the statistics and metrics routes use of the app's context (see `app.core.deps`)."""

from __future__ import annotations

from typing import Annotated, Any, Protocol

from fastapi import Depends

from app.core.deps import CoreContext, get_context
from app.stats.metrics import Metrics
from app.stats.metrics_access import MetricsAccess


class StatsContext(CoreContext, Protocol):
    metrics: Metrics
    metrics_access: MetricsAccess

    def gauge_values(self) -> dict[str, Any]:
        """The gauges' current values (in flight, queued, log queue, …)."""


StatsContextDep = Annotated[StatsContext, Depends(get_context)]
