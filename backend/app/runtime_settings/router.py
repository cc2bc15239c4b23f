"""Runtime settings: `/api/admin/settings` (admins) and `/api/settings/public` (anyone)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query

from app.access.dependencies import AdminUser, require_admin
from app.core.deps import SessionDep
from app.core.pagination import Page, PageDep
from app.core.runtime_values import PUBLIC_KEYS, field_info
from app.runtime_settings import service
from app.runtime_settings.context import RuntimeSettingsContextDep
from app.runtime_settings.schemas import SettingChangeRead, SettingInfo, SettingsSchema

router = APIRouter(
    prefix="/api/admin/settings", tags=["admin-settings"], dependencies=[Depends(require_admin)]
)
public_router = APIRouter(prefix="/api/settings", tags=["settings"])

SettingsMap = dict[str, Any]


@router.get("")
async def get_settings(ctx: RuntimeSettingsContextDep) -> SettingsMap:
    """Every option's value in force, as `{key: value}`."""
    return ctx.runtime.current.model_dump()


@router.put("")
async def update_settings(
    ctx: RuntimeSettingsContextDep,
    db: SessionDep,
    admin: AdminUser,
    changes: Annotated[
        SettingsMap, Body(examples=[{"ip_rpm": 300, "registration_enabled": False}])
    ],
) -> SettingsMap:
    """Change some options (`{key: value}`); the others stay. Applies at once, on every process."""
    new = await service.update(db, ctx.runtime.current, changes, admin)
    return new.model_dump()


@router.delete("/{key}")
async def reset_setting(
    key: str, ctx: RuntimeSettingsContextDep, db: SessionDep, admin: AdminUser
) -> SettingsMap:
    """Make one option follow its default again."""
    new = await service.reset(db, ctx.runtime.current, ctx.runtime.defaults, key, admin)
    return new.model_dump()


@router.get("/schema")
async def settings_schema(ctx: RuntimeSettingsContextDep, db: SessionDep) -> SettingsSchema:
    """Every option with its type, bounds, default, description and who last changed it."""
    rows = await service.rows(db)
    current, defaults = ctx.runtime.current.model_dump(), ctx.runtime.defaults.model_dump()
    items = []
    for key in service.KEYS:
        row = rows.get(key)
        items.append(
            SettingInfo(
                key=key,
                value=current[key],
                default=defaults[key],
                overridden=bool(row and row.overridden),
                updated_at=row.updated_at if row and row.overridden else None,
                updated_by=row.updated_by if row and row.overridden else None,
                **field_info(key),
            )
        )
    return SettingsSchema(items=items)


@router.get("/history")
async def settings_history(
    db: SessionDep, page: PageDep, key: Annotated[str | None, Query(max_length=64)] = None
) -> Page[SettingChangeRead]:
    """Changes, newest first: who, when, old → new."""
    rows, total = await service.history(db, page, key=key)
    return page.result([SettingChangeRead.model_validate(r) for r in rows], total)


@public_router.get("/public")
async def public_settings(ctx: RuntimeSettingsContextDep) -> SettingsMap:
    """What the web app needs before sign-in: site name, announcement, registration open …, and
    `mail_enabled` (whether links can be mailed: password reset, address confirmation)."""
    current = ctx.runtime.current
    return {key: getattr(current, key) for key in PUBLIC_KEYS} | {
        "mail_enabled": ctx.account_mail.available
    }
