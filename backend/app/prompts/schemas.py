from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Body = Annotated[str, Field(min_length=1, max_length=20_000)]


class PromptCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: Title
    body: Body
    shared: bool = Field(default=False, description="Admins only: publish it to everyone")


class PromptUpdate(BaseModel):
    """Omitted fields stay as they are."""

    model_config = ConfigDict(extra="forbid")

    title: Title | None = None
    body: Body | None = None
    shared: bool | None = None


class PromptRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    title: str
    body: str
    shared: bool
    mine: bool = Field(description="Yours to change (else published by an admin)")
    created_at: datetime
    updated_at: datetime
