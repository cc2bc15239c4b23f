"""Annotated dependency aliases shared by every router.

The app's context (built by the composition root, `app.composition`) is reached through protocols:
`CoreContext` here for what every route may need, and one per domain (`<domain>/context.py`) for
what that domain's routes use — so a router imports its own domain and `core`, never the whole app.
The composition root checks statically that its context satisfies every one of them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any, Protocol, cast

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.core.config import Settings
from app.core.db import commit
from app.core.errors import AppError
from app.core.security import PasswordHasher, SecretBox, TokenCodec


class CoreContext(Protocol):
    """What any route may use, whatever its domain."""

    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    tokens: TokenCodec
    hasher: PasswordHasher
    secret_box: SecretBox


async def get_context(request: Request) -> Any:
    """The app's context, typed by the protocol the route's alias names (`CoreContextDep`, …)."""
    return request.app.state.ctx


CoreContextDep = Annotated[CoreContext, Depends(get_context)]


async def get_session(ctx: CoreContextDep) -> AsyncIterator[AsyncSession]:
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
                await commit(session)
            else:
                await session.rollback()
            raise
        except BaseException:
            await session.rollback()
            raise
        else:
            await commit(session)


# scope="function": the commit happens when the route returns, not after the response is sent.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


async def get_tokens(ctx: CoreContextDep) -> TokenCodec:
    return ctx.tokens


TokensDep = Annotated[TokenCodec, Depends(get_tokens)]


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
