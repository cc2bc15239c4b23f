"""Row ids as they arrive in paths and query strings: bounded to what the columns hold.

Ids are INTEGER columns (32-bit on PostgreSQL) except messages' and call logs' (64-bit). A number
past the column's range can name no row; refusing it at validation (422) keeps it from reaching the
database driver, which would fail on it.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query
from pydantic import Field

INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1

RowId = Annotated[int, Path(ge=1, le=INT32_MAX)]
BigRowId = Annotated[int, Path(ge=1, le=INT64_MAX)]
RowIdFilter = Annotated[int | None, Query(ge=1, le=INT32_MAX)]
# The same bounds inside request bodies, and for counts stored in INTEGER columns.
RowIdField = Annotated[int, Field(ge=1, le=INT32_MAX)]
CountField = Annotated[int, Field(ge=0, le=INT32_MAX)]
