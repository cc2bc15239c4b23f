"""Admin: the IP blacklist (`/api/admin/ip-rules`) and the blocked attempts it caught."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, status

from app.access.dependencies import AdminUser, require_admin
from app.core.deps import ClientIP, SessionDep
from app.core.ids import RowId, RowIdFilter
from app.core.pagination import Page, PageDep
from app.ipfilter import service
from app.ipfilter.schemas import BlockedAttemptRead, IPRuleCreate, IPRuleRead, IPRuleUpdate
from app.models.ip_rule import IPRule

router = APIRouter(
    prefix="/api/admin/ip-rules", tags=["admin-ip-rules"], dependencies=[Depends(require_admin)]
)


def _read(rule: IPRule) -> IPRuleRead:
    return IPRuleRead.model_validate(rule).model_copy(update={"active": service.is_active(rule)})


@router.get("")
async def list_rules(
    db: SessionDep,
    page: PageDep,
    q: Annotated[
        str | None, Query(max_length=100, description="Part of the range or reason")
    ] = None,
    active: Annotated[bool, Query(description="Only rules in force now")] = False,
) -> Page[IPRuleRead]:
    """Blacklist rules, filtered by address or reason (`q`) and whether they are in force
    (`active`)."""
    rows, total = await service.list_rules(db, page, query=q, active_only=active)
    return page.result([_read(r) for r in rows], total)


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_rule(
    body: IPRuleCreate,
    db: SessionDep,
    admin: AdminUser,
    client_ip: ClientIP,
) -> IPRuleRead:
    """Block an address or range (201); one matching every address, or the caller's own, needs
    `confirm`."""
    rule = await service.create(db, admin, client_ip, body.model_dump())
    return _read(rule)


@router.get("/attempts")
async def list_attempts(
    db: SessionDep,
    page: PageDep,
    ip: Annotated[str | None, Query(max_length=64, description="Part of the address")] = None,
    rule_id: RowIdFilter = None,
) -> Page[BlockedAttemptRead]:
    """Refused requests, counted per (address, rule), most recent first."""
    rows, total = await service.list_attempts(db, page, ip=ip, rule_id=rule_id)
    return page.result([BlockedAttemptRead.model_validate(r) for r in rows], total)


@router.get("/{rule_id}")
async def get_rule(rule_id: RowId, db: SessionDep) -> IPRuleRead:
    """One blacklist rule."""
    return _read(await service.get(db, rule_id))


@router.patch("/{rule_id}")
async def update_rule(
    rule_id: RowId, body: IPRuleUpdate, db: SessionDep, client_ip: ClientIP
) -> IPRuleRead:
    """Change a rule's `reason`, `expires_at` or `enabled`."""
    rule = await service.update(
        db, await service.get(db, rule_id), client_ip, body.model_dump(exclude_unset=True)
    )
    return _read(rule)


@router.delete("/{rule_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_rule(rule_id: RowId, db: SessionDep) -> None:
    """Delete a blacklist rule (takes effect on every process at once)."""
    await service.delete(db, await service.get(db, rule_id))
