"""Avatar upload (`/api/auth/me/avatar`) and the images themselves (`/api/avatars/<sha256>.webp`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Path, UploadFile
from fastapi.responses import Response

from app.access.dependencies import CurrentUser
from app.core.deps import SessionDep
from app.users import avatar
from app.users.context import UsersContextDep
from app.users.schemas import UserRead

router = APIRouter(tags=["auth"])
IMMUTABLE = "public, max-age=31536000, immutable"


@router.put("/api/auth/me/avatar")
async def upload_avatar(
    file: Annotated[
        UploadFile,
        File(description="PNG, WebP or GIF up to 16 megapixels, or JPEG up to 50; at most 5 MB"),
    ],
    user: CurrentUser,
    db: SessionDep,
    ctx: UsersContextDep,
) -> UserRead:
    """Set the signed-in user's avatar (re-encoded as a 256 px square)."""
    data = await file.read(avatar.MAX_UPLOAD_BYTES + 1)
    return UserRead.model_validate(await avatar.replace(db, ctx.images, user, data))


@router.delete("/api/auth/me/avatar")
async def delete_avatar(user: CurrentUser, db: SessionDep) -> UserRead:
    """Remove your avatar (your initial is shown instead)."""
    return UserRead.model_validate(await avatar.remove(db, user))


@router.get(
    "/api/avatars/{content_hash}.webp",
    response_class=Response,
    responses={200: {"content": {avatar.CONTENT_TYPE: {}}}, 404: {}},
)
async def get_avatar(
    content_hash: Annotated[str, Path(pattern=r"^[0-9a-f]{64}$")], db: SessionDep
) -> Response:
    """An avatar image. Public (an `<img>` sends no token); its name is its SHA-256."""
    return Response(
        await avatar.image(db, content_hash),
        media_type=avatar.CONTENT_TYPE,
        headers={"Cache-Control": IMMUTABLE},
    )
