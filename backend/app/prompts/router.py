"""Saved prompts: `/api/prompts` (every signed-in user: theirs and the published ones)."""

from __future__ import annotations

from fastapi import APIRouter, status

from app.access.dependencies import CurrentUser
from app.core.deps import SessionDep
from app.core.ids import RowId
from app.prompts import service
from app.prompts.schemas import PromptCreate, PromptRead, PromptUpdate

router = APIRouter(prefix="/api/prompts", tags=["prompts"])


@router.get("")
async def list_prompts(user: CurrentUser, db: SessionDep) -> list[PromptRead]:
    """Your prompts and the ones admins published, by title."""
    return [service.to_read(p, user) for p in await service.visible(db, user)]


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_prompt(body: PromptCreate, user: CurrentUser, db: SessionDep) -> PromptRead:
    """Keep a prompt (`shared`: admins publish it to everyone)."""
    return service.to_read(await service.create(db, user, body), user)


@router.patch("/{prompt_id}")
async def update_prompt(
    prompt_id: RowId, body: PromptUpdate, user: CurrentUser, db: SessionDep
) -> PromptRead:
    return service.to_read(await service.update(db, user, prompt_id, body), user)


@router.delete("/{prompt_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_prompt(prompt_id: RowId, user: CurrentUser, db: SessionDep) -> None:
    await service.delete(db, user, prompt_id)
