"""Points in time given by clients, made safe to store and to compute with.

A client may send any date the ISO 8601 grammar allows; Python's `datetime` cannot hold all of
them once converted: `0001-01-01T00:00:00+14:00` is in year 0 in UTC, and a day after
`9999-12-31` does not exist, so the conversion or the first `+ timedelta` raised
`OverflowError` — a 500, or a CSV export cut off mid-file after its 200. Every client-given time
is therefore converted to UTC here, at the schema, and must fall within `EARLIEST` to `LATEST`
(a margin either side, so a day or a time zone can always be added); anything else is a 422
naming the field.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime

EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9998, 12, 31, 23, 59, 59, tzinfo=UTC)
RANGE_MESSAGE = "must be between 1970-01-01 and 9998-12-31 (UTC)"


def bounded_utc(value: datetime) -> datetime:
    """`value` in UTC (a time without a zone is taken as UTC), within the supported range."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    try:
        value = value.astimezone(UTC)
    except OverflowError:
        raise ValueError(RANGE_MESSAGE) from None
    if not EARLIEST <= value <= LATEST:
        raise ValueError(RANGE_MESSAGE)
    return value


# With a time zone (ISO 8601, e.g. 2026-12-31T00:00:00+08:00), converted to UTC, within range.
Instant = Annotated[AwareDatetime, AfterValidator(bounded_utc)]
# The same, but a time without a zone is taken as UTC.
InstantOrUTC = Annotated[datetime, AfterValidator(bounded_utc)]
