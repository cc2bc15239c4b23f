"""Who is calling: `CurrentPrincipal`, `CurrentUser` and `AdminUser` for `/api` routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from fastapi.security import OAuth2PasswordBearer

from app.access.principal import Principal, authenticate
from app.core.deps import SessionDep, TokensDep
from app.core.errors import ForbiddenError
from app.models import User

# Declares the bearer scheme in OpenAPI, so Swagger's "Authorize" button signs in through the
# OAuth2 password form at /api/auth/token. auto_error=False: we answer 401 ourselves, uniformly.
oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/api/auth/token", auto_error=False)


async def get_principal(
    tokens: TokensDep,
    db: SessionDep,
    token: Annotated[str | None, Depends(oauth2_scheme)],
) -> Principal:
    return await authenticate(db, tokens, token)


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


async def get_current_user(principal: CurrentPrincipal) -> User:
    return principal.user


CurrentUser = Annotated[User, Depends(get_current_user)]


async def require_admin(user: CurrentUser) -> User:
    if not user.is_admin:
        raise ForbiddenError("Admin access required", code="admin_required")
    return user


AdminUser = Annotated[User, Depends(require_admin)]
