"""Agents: read by everyone (enabled ones), managed by admins; one of them is the default."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.agents.schemas import AgentCreate, AgentUpdate, PrivateAgentCreate, PrivateAgentUpdate
from app.core.db import get_or_404
from app.core.errors import ConflictError, NotFoundError
from app.models import Agent, AppMeta

DEFAULT_AGENT_MARK = "default_agent"
ORDER = (Agent.sort_order, Agent.id)


MAX_PRIVATE_AGENTS = 50


def _sees(user_id: int | None) -> ColumnElement[bool]:
    """The site's agents, and `user_id`'s own."""
    site = Agent.owner_id.is_(None)
    return site if user_id is None else or_(site, Agent.owner_id == user_id)


async def list_enabled(db: AsyncSession, user_id: int | None = None) -> Sequence[Agent]:
    """The enabled site agents, then the user's own."""
    query = select(Agent).where(Agent.enabled, _sees(user_id))
    return (await db.scalars(query.order_by(Agent.owner_id.is_not(None), *ORDER))).all()


async def list_all(db: AsyncSession) -> Sequence[Agent]:
    """The site's agents (admins); users' private ones are theirs."""
    return (await db.scalars(select(Agent).where(Agent.owner_id.is_(None)).order_by(*ORDER))).all()


async def get_any(db: AsyncSession, agent_id: int) -> Agent:
    agent = await get_or_404(db, Agent, agent_id, "Agent")
    if agent.owner_id is not None:
        raise NotFoundError("Agent not found", code="agent_not_found")
    return agent


async def get_enabled(db: AsyncSession, agent_id: int, user_id: int | None = None) -> Agent:
    """An agent a user may start a chat with (a disabled one, or someone else's private one,
    is as good as missing)."""
    agent = await db.get(Agent, agent_id)
    if (
        agent is None
        or not agent.enabled
        or (agent.owner_id is not None and agent.owner_id != user_id)
    ):
        raise NotFoundError("Agent not found", code="agent_not_found")
    return agent


async def get_own(db: AsyncSession, agent_id: int, user_id: int) -> Agent:
    agent = await db.get(Agent, agent_id)
    if agent is None or agent.owner_id != user_id:
        raise NotFoundError("Agent not found", code="agent_not_found")
    return agent


async def create_private(db: AsyncSession, user_id: int, body: PrivateAgentCreate) -> Agent:
    owned = await db.scalar(
        select(func.count()).select_from(Agent).where(Agent.owner_id == user_id)
    )
    if (owned or 0) >= MAX_PRIVATE_AGENTS:
        raise ConflictError(
            f"You already have {MAX_PRIVATE_AGENTS} agents; delete one first",
            code="too_many_agents",
        )
    values = body.model_dump()
    values["params"] = {k: v for k, v in values["params"].items() if v is not None}
    agent = Agent(**values, owner_id=user_id, enabled=True, is_default=False)
    db.add(agent)
    await db.flush()
    return agent


async def update_private(db: AsyncSession, agent: Agent, body: PrivateAgentUpdate) -> Agent:
    values = body.model_dump(exclude_unset=True)
    if values.get("params") is not None:
        values["params"] = {k: v for k, v in values["params"].items() if v is not None}
    for name, value in values.items():
        if value is None and name != "default_model":
            continue
        setattr(agent, name, value)
    await db.flush()
    await db.refresh(agent)
    return agent


async def default_agent(db: AsyncSession) -> Agent | None:
    return await db.scalar(
        select(Agent)
        .where(Agent.enabled, Agent.is_default, Agent.owner_id.is_(None))
        .order_by(*ORDER)
        .limit(1)
    )


def _values(body: AgentCreate | AgentUpdate, *, partial: bool) -> dict[str, Any]:
    values = body.model_dump(exclude_unset=partial)
    if "params" in values:
        values["params"] = {k: v for k, v in (values["params"] or {}).items() if v is not None}
    if "preset_messages" in values and values["preset_messages"] is None:
        values.pop("preset_messages")
    return values


async def _clear_other_defaults(db: AsyncSession, keep_id: int) -> None:
    await db.execute(
        update(Agent).where(Agent.id != keep_id, Agent.is_default).values(is_default=False)
    )


async def create(db: AsyncSession, body: AgentCreate) -> Agent:
    agent = Agent(**_values(body, partial=False))
    db.add(agent)
    await db.flush()
    if agent.is_default:
        await _clear_other_defaults(db, agent.id)
    return agent


async def update_agent(db: AsyncSession, agent: Agent, body: AgentUpdate) -> Agent:
    for name, value in _values(body, partial=True).items():
        if value is None and name not in ("default_model",):
            continue  # null means "leave it" for fields that cannot be empty
        setattr(agent, name, value)
    await db.flush()
    if agent.is_default:
        await _clear_other_defaults(db, agent.id)
    await db.refresh(agent)
    return agent


async def delete(db: AsyncSession, agent: Agent) -> None:
    """Conversations started from it keep their copied context (their agent_id becomes null)."""
    await db.delete(agent)
    await db.flush()


async def ensure_default_agent(sessionmaker: async_sessionmaker[AsyncSession]) -> bool:
    """Create the built-in default agent once per installation (never again if deleted)."""
    async with sessionmaker() as db:
        if await db.get(AppMeta, DEFAULT_AGENT_MARK) is not None:
            return False
        try:
            db.add(AppMeta(key=DEFAULT_AGENT_MARK, value="created"))
            await db.flush()
            db.add(
                Agent(
                    name="Assistant · 通用助手",
                    description="A helpful general-purpose assistant. 通用的智能助手。",
                    avatar="🤖",
                    system_prompt=(
                        "You are a helpful, accurate assistant. Answer in the language the user "
                        "writes in. Use Markdown for structure and code."
                    ),
                    greetings=[
                        "你好！我是你的 AI 助手，有什么可以帮你？ Hi! How can I help you today?"
                    ],
                    suggested_questions=[
                        "用三句话解释什么是大语言模型",
                        "Write a Python function that checks whether a string is a palindrome",
                        "帮我写一封请假邮件",
                    ],
                    is_default=True,
                )
            )
            await db.commit()
        except IntegrityError:  # another process claimed it first
            await db.rollback()
            return False
    return True
