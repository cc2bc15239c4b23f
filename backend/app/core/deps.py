"""Annotated dependency aliases shared by every router."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, cast

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.context import AppContext
from app.core.errors import AppError


async def get_context(request: Request) -> AppContext:
    return cast(AppContext, request.app.state.ctx)


ContextDep = Annotated[AppContext, Depends(get_context)]


AFTER_COMMIT = "after_commit"


def after_commit(db: AsyncSession, callback: Callable[[], Awaitable[None] | None]) -> None:
    """Run `callback` (sync or async) once this request's transaction has committed."""
    db.info.setdefault(AFTER_COMMIT, []).append(callback)


async def _commit(session: AsyncSession) -> None:
    await session.commit()
    for callback in session.info.pop(AFTER_COMMIT, []):
        result = callback()
        if inspect.isawaitable(result):
            await result


async def get_session(ctx: ContextDep) -> AsyncIterator[AsyncSession]:
    """One session per request; commits when the route returns, before the response is sent.

    Any exception rolls back, except an `AppError` raised with `commit=True`: that error is the
    request's outcome and what was written before it stands (e.g. revoking a session on refresh-token
    reuse, then answering 401).
    """
    async with ctx.sessionmaker() as session:
        try:
            yield session
        except AppError as exc:
            if exc.commit:
                await _commit(session)
            else:
                await session.rollback()
            raise
        except BaseException:
            await session.rollback()
            raise
        else:
            await _commit(session)


# scope="function": the commit happens when the route returns, not after the response is sent.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


async def get_client_ip(request: Request) -> str:
    return cast(str, request.scope.get("state", {}).get("client_ip") or "unknown")


ClientIP = Annotated[str, Depends(get_client_ip)]


async def get_user_agent(request: Request) -> str | None:
    agent = request.headers.get("user-agent")
    return agent[:255] if agent else None


UserAgent = Annotated[str | None, Depends(get_user_agent)]


async def get_request_id(request: Request) -> str:
    return cast(str, request.scope.get("state", {}).get("request_id") or "-")


RequestId = Annotated[str, Depends(get_request_id)]
