"""CSV export of call logs: streamed batch by batch (flat memory), UTF-8 with a BOM so Excel reads
Chinese text correctly, times in the site's time zone, and a totals line at the end."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from dataclasses import replace
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncEngine

from app.billing.money import nano_text
from app.logs.public_errors import public_error
from app.logs.query import ERROR_ENDS, EXPORT_COLUMNS, LogFilters, batches
from app.models.base import utcnow

BOM = "\ufeff"
BATCH_ROWS = 5000
# A cell starting with one of these is a formula to a spreadsheet: quote it (values here can come
# from callers, e.g. a model name).
_FORMULA_START = frozenset("=+-@\t\r")
# The columns whose text can come from callers or upstreams.
FREE_TEXT = ("request_id", "client_ip", "requested_model", "upstream_model", "error_message")
_INDEX = {name: index for index, name in enumerate(EXPORT_COLUMNS)}
HEADER = ["time", *EXPORT_COLUMNS[2:]]  # id is internal; time replaces created_at
# A caller's own export leaves out how the call was routed (the channel, its name for the model)
# and whose it was; a provider's failure is in plain words (logs.public_errors).
CHANNEL_INTERNALS = frozenset({"user_id", "upstream_model", "channel_id", "channels_tried"})
CALLER_HEADER = [name for name in HEADER if name not in CHANNEL_INTERNALS]


async def csv_stream(
    engine: AsyncEngine,
    filters: LogFilters,
    tz: ZoneInfo,
    batch_rows: int = BATCH_ROWS,
    *,
    for_caller: bool = False,
) -> AsyncIterator[bytes]:
    """The filtered rows as of now (later rows are not included), newest first. `for_caller`:
    the caller's own view (CALLER_HEADER)."""
    header = CALLER_HEADER if for_caller else HEADER
    keep = [HEADER.index(name) for name in header]
    error_at = HEADER.index("error_message")
    status_at, reason_at = HEADER.index("status_code"), HEADER.index("end_reason")
    now = utcnow()
    if filters.until is None or filters.until > now:
        filters = replace(filters, until=now)
    requests = errors = 0
    cost_at, spent = _INDEX["cost"], 0
    sums = {"prompt_tokens": 0, "completion_tokens": 0, "reasoning_tokens": 0, "total_tokens": 0}
    positions = {name: _INDEX[name] for name in sums}
    end_reason = _INDEX["end_reason"]
    free_text = [_INDEX[name] for name in FREE_TEXT]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    out.write(BOM)
    writer.writerow(header)
    yield out.getvalue().encode()
    async for rows in batches(engine, filters, batch_rows):
        out.seek(0)
        out.truncate()
        for row in rows:
            cells = list(row)
            cells[1] = row[1].astimezone(tz).isoformat(timespec="milliseconds")
            if row[cost_at] is not None:
                spent += row[cost_at]
                cells[cost_at] = nano_text(row[cost_at])
            for index in free_text:
                value = cells[index]
                if value and value[0] in _FORMULA_START:
                    cells[index] = "'" + value
            del cells[0]
            if for_caller:
                cells[error_at] = public_error(cells[reason_at], cells[status_at], cells[error_at])
                cells = [cells[index] for index in keep]
            writer.writerow(cells)
            requests += 1
            if row[end_reason] in ERROR_ENDS:
                errors += 1
            for name, index in positions.items():
                sums[name] += row[index] or 0
        yield out.getvalue().encode()
    total = [""] * len(header)
    total[0] = "TOTAL"
    total[1] = f"{requests} requests"
    total[header.index("end_reason")] = f"{errors} errors"
    for name, value in sums.items():
        total[header.index(name)] = str(value)
    total[header.index("cost")] = nano_text(spent)
    out.seek(0)
    out.truncate()
    writer.writerow(total)
    yield out.getvalue().encode()


def filename(prefix: str, tz: ZoneInfo) -> str:
    return f"{prefix}-{utcnow().astimezone(tz):%Y%m%d-%H%M%S}.csv"
