"""Agents: `/api/agents` (enabled ones, for every signed-in user) and `/api/admin/agents`."""

from __future__ import annotations

from fastapi import APIRouter, Depends, status

from app.access.dependencies import CurrentUser, require_admin
from app.agents import service as agent_service
from app.agents.schemas import AgentCreate, AgentRead, AgentUpdate
from app.core.deps import SessionDep
from app.core.ids import RowId
from app.core.pagination import Page

router = APIRouter(prefix="/api/agents", tags=["agents"])
admin_router = APIRouter(
    prefix="/api/admin/agents", tags=["admin-agents"], dependencies=[Depends(require_admin)]
)


def _page(agents: list[AgentRead]) -> Page[AgentRead]:
    return Page(items=agents, total=len(agents), page=1, page_size=max(1, len(agents)))


@router.get("")
async def list_agents(_user: CurrentUser, db: SessionDep) -> Page[AgentRead]:
    return _page([AgentRead.model_validate(a) for a in await agent_service.list_enabled(db)])


@router.get("/{agent_id}")
async def get_agent(agent_id: RowId, _user: CurrentUser, db: SessionDep) -> AgentRead:
    return AgentRead.model_validate(await agent_service.get_enabled(db, agent_id))


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
