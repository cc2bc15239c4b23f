"""Admin user management (`/api/admin/users`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, status

from app.access.dependencies import AdminUser, require_admin
from app.billing.budgets import default_budget
from app.billing.spending import fill_spent
from app.core.deps import SessionDep
from app.core.ids import RowId
from app.core.pagination import Page, PageDep
from app.models import UserRole, UserStatus
from app.models.base import utcnow
from app.users import service as user_service
from app.users.context import UsersContextDep
from app.users.schemas import (
    PasswordResetByAdmin,
    PasswordResetResult,
    SignedOut,
    SignOutEverywhere,
    UserCreate,
    UserRead,
    UserUpdate,
)

router = APIRouter(
    prefix="/api/admin/users", tags=["admin-users"], dependencies=[Depends(require_admin)]
)


@router.get("")
async def list_users(
    ctx: UsersContextDep,
    db: SessionDep,
    page: PageDep,
    q: Annotated[str | None, Query(max_length=100)] = None,
    role: Annotated[UserRole | None, Query()] = None,
    user_status: Annotated[UserStatus | None, Query(alias="status")] = None,
) -> Page[UserRead]:
    rows, total = await user_service.list_users(db, page, query=q, role=role, status=user_status)
    items = [UserRead.model_validate(u) for u in rows]
    await fill_spent(db, "user", items, ctx.settings.server.timezone, utcnow())
    return page.result(items, total)


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_user(body: UserCreate, ctx: UsersContextDep, db: SessionDep) -> UserRead:
    values = ctx.runtime.current
    user = await user_service.create(
        db,
        ctx.hasher,
        username=body.username,
        password=body.password.get_secret_value(),
        email=body.email,
        display_name=body.display_name,
        role=body.role,
        status=body.status,
        budget=default_budget(values.default_user_budget, values.default_user_budget_period),
    )
    return UserRead.model_validate(user)


@router.get("/{user_id}")
async def get_user(user_id: RowId, db: SessionDep) -> UserRead:
    return UserRead.model_validate(await user_service.get(db, user_id))


@router.patch("/{user_id}")
async def update_user(
    user_id: RowId, body: UserUpdate, admin: AdminUser, ctx: UsersContextDep, db: SessionDep
) -> UserRead:
    target = await user_service.get(db, user_id)
    updated = await user_service.admin_update(
        db, admin, target, body.model_dump(exclude_unset=True)
    )
    return UserRead.model_validate(updated)


@router.post("/{user_id}/password")
async def reset_password(
    user_id: RowId, body: PasswordResetByAdmin, ctx: UsersContextDep, db: SessionDep
) -> PasswordResetResult:
    target = await user_service.get(db, user_id)
    generated, revoked = await user_service.admin_reset_password(
        db,
        ctx.hasher,
        target,
        body.password.get_secret_value() if body.password else None,
        revoke_api_keys=body.revoke_api_keys,
    )
    return PasswordResetResult(password=generated, api_keys_revoked=revoked)


@router.post("/{user_id}/sign-out")
async def sign_out_everywhere(
    user_id: RowId, body: SignOutEverywhere, ctx: UsersContextDep, db: SessionDep
) -> SignedOut:
    """End every session of the user at once (and, if asked, revoke their API keys)."""
    target = await user_service.get(db, user_id)
    revoked = await user_service.sign_out_everywhere(
        db, target, revoke_api_keys=body.revoke_api_keys
    )
    return SignedOut(api_keys_revoked=revoked)


@router.delete("/{user_id}/2fa", status_code=status.HTTP_204_NO_CONTENT)
async def reset_two_factor(user_id: RowId, db: SessionDep) -> None:
    """Switch a user's two-factor sign-in off (they lost their device and recovery codes)."""
    await user_service.turn_off_two_factor(db, await user_service.get(db, user_id))


@router.delete("/{user_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_user(
    user_id: RowId, admin: AdminUser, ctx: UsersContextDep, db: SessionDep
) -> None:
    await user_service.admin_delete(db, admin, await user_service.get(db, user_id))
