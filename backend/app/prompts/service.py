"""A user's prompts and the published ones: who sees, changes and publishes which.

Everyone sees their own and the published ones; only the author changes or deletes a prompt, and
an admin may delete any published one; only admins publish (`shared`). Another user's private
prompt is "not found", exactly like one that does not exist.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import ForbiddenError, NotFoundError
from app.models import SavedPrompt, User
from app.prompts.schemas import PromptCreate, PromptRead, PromptUpdate

MAX_PROMPTS_PER_USER = 500


def to_read(prompt: SavedPrompt, user: User) -> PromptRead:
    return PromptRead(
        id=prompt.id,
        title=prompt.title,
        body=prompt.body,
        shared=prompt.shared,
        mine=prompt.user_id == user.id,
        created_at=prompt.created_at,
        updated_at=prompt.updated_at,
    )


def _publishing(user: User, shared: bool | None) -> None:
    if shared and not user.is_admin:
        raise ForbiddenError(
            "Only admins publish prompts to everyone", code="admin_only", param="shared"
        )


async def visible(db: AsyncSession, user: User) -> Sequence[SavedPrompt]:
    query = select(SavedPrompt).where(
        or_(SavedPrompt.user_id == user.id, SavedPrompt.shared.is_(True))
    )
    return (await db.scalars(query.order_by(SavedPrompt.title, SavedPrompt.id))).all()


async def _get(db: AsyncSession, user: User, prompt_id: int, *, to_change: bool) -> SavedPrompt:
    prompt = await db.get(SavedPrompt, prompt_id)
    if prompt is None or (prompt.user_id != user.id and not prompt.shared):
        raise NotFoundError("Prompt not found", code="prompt_not_found")
    if to_change and prompt.user_id != user.id and not user.is_admin:
        raise ForbiddenError("A published prompt is changed by admins", code="not_yours")
    return prompt


async def create(db: AsyncSession, user: User, body: PromptCreate) -> SavedPrompt:
    _publishing(user, body.shared)
    owned = await db.scalar(
        select(func.count()).select_from(SavedPrompt).where(SavedPrompt.user_id == user.id)
    )
    if (owned or 0) >= MAX_PROMPTS_PER_USER:
        raise ForbiddenError(
            f"You already keep {MAX_PROMPTS_PER_USER} prompts; delete one first",
            code="too_many_prompts",
        )
    prompt = SavedPrompt(user_id=user.id, title=body.title, body=body.body, shared=body.shared)
    db.add(prompt)
    await db.flush()
    return prompt


async def update(db: AsyncSession, user: User, prompt_id: int, body: PromptUpdate) -> SavedPrompt:
    prompt = await _get(db, user, prompt_id, to_change=True)
    changes = body.model_dump(exclude_unset=True)
    _publishing(user, changes.get("shared"))
    for name in ("title", "body", "shared"):
        if changes.get(name) is not None:
            setattr(prompt, name, changes[name])
    await db.flush()
    return prompt


async def delete(db: AsyncSession, user: User, prompt_id: int) -> None:
    prompt = await _get(db, user, prompt_id, to_change=True)
    await db.delete(prompt)
    await db.flush()
