"""Agents: `/api/agents` (enabled ones, for every signed-in user) and `/api/admin/agents`."""

from __future__ import annotations

from fastapi import APIRouter, Depends, status

from app.access.dependencies import CurrentUser, require_admin
from app.agents import service as agent_service
from app.agents.context import AgentsContextDep
from app.agents.schemas import (
    AgentCreate,
    AgentRead,
    AgentUpdate,
    PrivateAgentCreate,
    PrivateAgentUpdate,
)
from app.core.deps import SessionDep
from app.core.errors import ForbiddenError
from app.core.ids import RowId
from app.core.pagination import Page

router = APIRouter(prefix="/api/agents", tags=["agents"])
admin_router = APIRouter(
    prefix="/api/admin/agents", tags=["admin-agents"], dependencies=[Depends(require_admin)]
)


def _page(agents: list[AgentRead]) -> Page[AgentRead]:
    return Page(items=agents, total=len(agents), page=1, page_size=max(1, len(agents)))


@router.get("")
async def list_agents(user: CurrentUser, db: SessionDep) -> Page[AgentRead]:
    """The site's enabled agents, then your own private ones."""
    agents = await agent_service.list_enabled(db, user.id)
    return _page([AgentRead.model_validate(a) for a in agents])


@router.get("/{agent_id}")
async def get_agent(agent_id: RowId, user: CurrentUser, db: SessionDep) -> AgentRead:
    return AgentRead.model_validate(await agent_service.get_enabled(db, agent_id, user.id))


def _allowed(ctx: AgentsContextDep) -> None:
    if not ctx.runtime.current.user_agents_enabled:
        raise ForbiddenError(
            "Private agents are not available on this site", code="user_agents_disabled"
        )


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_private_agent(
    body: PrivateAgentCreate, user: CurrentUser, ctx: AgentsContextDep, db: SessionDep
) -> AgentRead:
    """Your own agent, seen by you alone (when the runtime setting user_agents_enabled is on)."""
    _allowed(ctx)
    return AgentRead.model_validate(await agent_service.create_private(db, user.id, body))


@router.patch("/{agent_id}")
async def update_private_agent(
    agent_id: RowId,
    body: PrivateAgentUpdate,
    user: CurrentUser,
    ctx: AgentsContextDep,
    db: SessionDep,
) -> AgentRead:
    agent = await agent_service.get_own(db, agent_id, user.id)
    _allowed(ctx)
    return AgentRead.model_validate(await agent_service.update_private(db, agent, body))


@router.delete("/{agent_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_private_agent(agent_id: RowId, user: CurrentUser, db: SessionDep) -> None:
    """Your own agent (chats started from it keep their copied context)."""
    await agent_service.delete(db, await agent_service.get_own(db, agent_id, user.id))


@admin_router.get("")
async def admin_list_agents(db: SessionDep) -> Page[AgentRead]:
    return _page([AgentRead.model_validate(a) for a in await agent_service.list_all(db)])


@admin_router.post("", status_code=status.HTTP_201_CREATED)
async def create_agent(body: AgentCreate, db: SessionDep) -> AgentRead:
    return AgentRead.model_validate(await agent_service.create(db, body))


@admin_router.get("/{agent_id}")
async def admin_get_agent(agent_id: RowId, db: SessionDep) -> AgentRead:
    return AgentRead.model_validate(await agent_service.get_any(db, agent_id))


@admin_router.patch("/{agent_id}")
async def update_agent(agent_id: RowId, body: AgentUpdate, db: SessionDep) -> AgentRead:
    agent = await agent_service.get_any(db, agent_id)
    return AgentRead.model_validate(await agent_service.update_agent(db, agent, body))


@admin_router.delete("/{agent_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_agent(agent_id: RowId, db: SessionDep) -> None:
    await agent_service.delete(db, await agent_service.get_any(db, agent_id))
