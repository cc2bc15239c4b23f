from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class SettingInfo(BaseModel):
    key: str
    value: Any
    default: Any
    overridden: bool = Field(description="An admin chose the value (false: it follows the default)")
    type: str = Field(description="boolean, integer, number or string")
    group: str
    description: str
    public: bool = Field(description="Readable by anyone through /api/settings/public")
    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    min_length: int | None = None
    max_length: int | None = None
    updated_at: datetime | None = None
    updated_by: str | None = None


class SettingsSchema(BaseModel):
    items: list[SettingInfo]


class SettingChangeRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    key: str
    old_value: Any
    new_value: Any
    action: str = Field(description="update, or reset (back to the default)")
    changed_by_id: int | None
    changed_by: str | None
    changed_at: datetime
