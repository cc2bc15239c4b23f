"""Avatars: any common image in, a small square WebP out.

The upload is judged by its content (Pillow must recognise it as PNG, JPEG, WebP or GIF), never by
its name or declared type. It is decoded with bounded memory (`app.core.images`: a pixel budget
read before decoding, JPEG decoded at a reduced scale, few decodes at once), turned upright (EXIF),
cropped to a centred square, resized to 256 px and re-encoded, so nothing of the
original file — metadata, trailing bytes, a script disguised as an image — is ever served back.
The result is stored in the database (so every process serves it) under its SHA-256, which is in
its URL: a browser may cache it for ever, and a new avatar is a new URL.
"""

from __future__ import annotations

import hashlib
import io

from PIL import Image, ImageOps
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import get_or_create
from app.core.errors import AppError, NotFoundError
from app.core.images import ImageDecoding, ImageRejectedError, decode_reduced
from app.models import User, UserAvatar
from app.models.base import utcnow

MAX_UPLOAD_BYTES = 5 * 1024 * 1024
SIDE = 256
ACCEPTED_FORMATS = frozenset({"PNG", "JPEG", "WEBP", "GIF"})
CONTENT_TYPE = "image/webp"


class AvatarTooLargeError(AppError):
    status_code = 413
    code = "avatar_too_large"
    default_message = f"The image is larger than {MAX_UPLOAD_BYTES // (1024 * 1024)} MB"


class NotAnImageError(AppError):
    status_code = 415
    code = "not_an_image"
    default_message = "This file is not a PNG, JPEG, WebP or GIF image"


def reencode(data: bytes) -> bytes:
    """The avatar for an uploaded file, or NotAnImageError / AvatarTooLargeError."""
    if len(data) > MAX_UPLOAD_BYTES:
        raise AvatarTooLargeError()
    try:
        image = decode_reduced(data, ACCEPTED_FORMATS, SIDE)
    except ImageRejectedError as exc:
        if exc.too_large:
            raise AvatarTooLargeError(str(exc)) from None
        raise NotAnImageError() from None
    mode = "RGBA" if "A" in image.getbands() or "transparency" in image.info else "RGB"
    square = ImageOps.fit(image.convert(mode), (SIDE, SIDE), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    square.save(out, format="WEBP", quality=85, method=4)
    return out.getvalue()


async def replace(db: AsyncSession, images: ImageDecoding, user: User, data: bytes) -> User:
    image = await images.run(reencode, data)
    digest = hashlib.sha256(image).hexdigest()
    # Two uploads at once by one user: one inserts the row, the other updates it.
    row, _ = await get_or_create(
        db,
        UserAvatar,
        user.id,
        lambda: UserAvatar(user_id=user.id, content_hash=digest, image=image),
    )
    row.content_hash, row.image, row.updated_at = digest, image, utcnow()
    user.avatar_hash = digest
    await db.flush()
    return user


async def remove(db: AsyncSession, user: User) -> User:
    row = await db.get(UserAvatar, user.id)
    if row is not None:
        await db.delete(row)
    user.avatar_hash = None
    await db.flush()
    return user


async def image(db: AsyncSession, content_hash: str) -> bytes:
    found = await db.scalar(
        select(UserAvatar.image).where(UserAvatar.content_hash == content_hash).limit(1)
    )
    if found is None:
        raise NotFoundError("Avatar not found")
    return found
