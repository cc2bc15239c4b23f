from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, status

from app.access.dependencies import CurrentUser, require_admin
from app.billing.spending import fill_spent
from app.core.deps import CoreContextDep, SessionDep
from app.core.ids import RowId, RowIdFilter
from app.core.pagination import Page, PageDep
from app.keys import service as key_service
from app.keys.schemas import (
    AdminApiKeyRead,
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyRead,
    ApiKeyUpdate,
    KeyStatus,
)
from app.models.base import utcnow

router = APIRouter(prefix="/api/keys", tags=["keys"])
admin_router = APIRouter(
    prefix="/api/admin/keys", tags=["admin-keys"], dependencies=[Depends(require_admin)]
)


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_key(body: ApiKeyCreate, user: CurrentUser, db: SessionDep) -> ApiKeyCreated:
    """Create an API key: 201 with `key` — **shown only in this response**."""
    key, plaintext = await key_service.create(
        db,
        user,
        name=body.name,
        expires_at=body.expires_at,
        models=body.models,
        rpm_limit=body.rpm_limit,
        concurrent_streams_limit=body.concurrent_streams_limit,
        budget=body.model_dump(include={"budget", "budget_period"}, exclude_unset=True),
    )
    return ApiKeyCreated(**key_service.to_read(key).model_dump(), key=plaintext)


@router.get("")
async def list_keys(
    user: CurrentUser,
    ctx: CoreContextDep,
    db: SessionDep,
    page: PageDep,
    include_revoked: Annotated[bool, Query()] = False,
) -> Page[ApiKeyRead]:
    """Your API keys, shown as `sk-AbCd1234…wxyz` (`include_revoked` to list revoked ones too),
    each with what it spent in its budget's period (else this month)."""
    rows, total = await key_service.list_for_user(
        db, user.id, page, include_revoked=include_revoked
    )
    items = [key_service.to_read(k) for k in rows]
    await fill_spent(db, "key", items, ctx.settings.server.timezone, utcnow())
    return page.result(items, total)


@router.get("/{key_id}")
async def get_key(key_id: RowId, user: CurrentUser, db: SessionDep) -> ApiKeyRead:
    """One of your API keys, shown as `sk-AbCd1234…wxyz`."""
    return key_service.to_read(await key_service.get_for_user(db, user.id, key_id))


@router.patch("/{key_id}")
async def update_key(
    key_id: RowId, body: ApiKeyUpdate, user: CurrentUser, db: SessionDep
) -> ApiKeyRead:
    """Rename, change expiry, model allow-list or the key's own limits."""
    key = await key_service.get_for_user(db, user.id, key_id)
    updated = await key_service.update(db, key, body.model_dump(exclude_unset=True))
    return key_service.to_read(updated)


@router.delete("/{key_id}", status_code=status.HTTP_204_NO_CONTENT)
async def revoke_key(key_id: RowId, user: CurrentUser, db: SessionDep) -> None:
    """Revoke (the key stays listed as revoked)."""
    await key_service.revoke(db, await key_service.get_for_user(db, user.id, key_id))


@admin_router.get("")
async def admin_list_keys(
    ctx: CoreContextDep,
    db: SessionDep,
    page: PageDep,
    user_id: RowIdFilter = None,
    q: Annotated[str | None, Query(max_length=100)] = None,
    key_status: Annotated[KeyStatus | None, Query(alias="status")] = None,
) -> Page[AdminApiKeyRead]:
    """Admins: everyone's API keys, filtered by user, name and status."""
    items, total = await key_service.admin_list(
        db, page, user_id=user_id, query=q, status=key_status
    )
    await fill_spent(db, "key", items, ctx.settings.server.timezone, utcnow())
    return page.result(items, total)


@admin_router.delete("/{key_id}", status_code=status.HTTP_204_NO_CONTENT)
async def admin_revoke_key(key_id: RowId, db: SessionDep) -> None:
    """Admins: revoke anyone's API key (it stops working on every process at once)."""
    await key_service.revoke(db, await key_service.get_any(db, key_id))
