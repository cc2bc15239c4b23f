"""API keys: how OpenAI-compatible clients authenticate to `/v1`.

A key is `sk-` plus 48 random letters and digits. Only its SHA-256 is stored, with a short prefix and
the last four characters so people can tell their keys apart. The key is returned once, at creation.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import func, or_, select
from sqlalchemy import update as sql_update
from sqlalchemy.ext.asyncio import AsyncSession

from app.billing.schemas import apply_budget
from app.core.db import get_or_404
from app.core.errors import ConflictError, NotFoundError, UnauthorizedError, UnprocessableError
from app.core.events import announce
from app.core.pagination import PageParams, like_pattern, paginate
from app.core.security import API_KEY_PREFIX, generate_api_key, hash_api_key
from app.keys.schemas import AdminApiKeyRead, ApiKeyRead, KeyStatus
from app.models import ApiKey, User
from app.models.base import utcnow

SHOWN_PREFIX_CHARS = 8
MAX_ACTIVE_KEYS_PER_USER = 200


def status_of(key: ApiKey, now: datetime | None = None) -> KeyStatus:
    if key.revoked_at is not None:
        return "revoked"
    if key.expires_at is not None and key.expires_at <= (now or utcnow()):
        return "expired"
    return "active"


def to_read(key: ApiKey) -> ApiKeyRead:
    return ApiKeyRead(
        id=key.id,
        user_id=key.user_id,
        name=key.name,
        prefix=key.prefix,
        last4=key.last4,
        masked=f"{key.prefix}…{key.last4}",
        models=key.models,
        rpm_limit=key.rpm_limit,
        concurrent_streams_limit=key.concurrent_streams_limit,
        budget=key.budget_nano,
        budget_period=key.budget_period,
        status=status_of(key),
        created_at=key.created_at,
        expires_at=key.expires_at,
        revoked_at=key.revoked_at,
        last_used_at=key.last_used_at,
    )


def _future_expiry(expires_at: datetime | None) -> datetime | None:
    if expires_at is None:
        return None
    if expires_at.tzinfo is None:
        expires_at = expires_at.replace(tzinfo=UTC)  # a time without a zone is taken as UTC
    if expires_at <= utcnow():
        raise UnprocessableError(
            "Expiry must be in the future", code="expiry_in_past", param="expires_at"
        )
    return expires_at


async def create(
    db: AsyncSession,
    user: User,
    *,
    name: str,
    expires_at: datetime | None,
    models: list[str] | None,
    rpm_limit: int | None = None,
    concurrent_streams_limit: int | None = None,
    budget: dict[str, object] | None = None,
) -> tuple[ApiKey, str]:
    active = await db.scalar(
        select(func.count())
        .select_from(ApiKey)
        .where(ApiKey.user_id == user.id, ApiKey.revoked_at.is_(None))
    )
    if (active or 0) >= MAX_ACTIVE_KEYS_PER_USER:
        raise ConflictError(
            f"You already have {MAX_ACTIVE_KEYS_PER_USER} keys; revoke one first",
            code="too_many_keys",
        )
    plaintext = generate_api_key()
    key = ApiKey(
        user_id=user.id,
        name=name,
        key_hash=hash_api_key(plaintext),
        prefix=plaintext[: len(API_KEY_PREFIX) + SHOWN_PREFIX_CHARS],
        last4=plaintext[-4:],
        models=models,
        expires_at=_future_expiry(expires_at),
        rpm_limit=rpm_limit,
        concurrent_streams_limit=concurrent_streams_limit,
    )
    apply_budget(key, budget or {})
    db.add(key)
    await db.flush()
    return key, plaintext


async def list_for_user(
    db: AsyncSession, user_id: int, page: PageParams, *, include_revoked: bool
) -> tuple[Sequence[ApiKey], int]:
    query = select(ApiKey).where(ApiKey.user_id == user_id)
    if not include_revoked:
        query = query.where(ApiKey.revoked_at.is_(None))
    return await paginate(db, query.order_by(ApiKey.id.desc()), page)


async def get_for_user(db: AsyncSession, user_id: int, key_id: int) -> ApiKey:
    """Someone else's key is "not found", exactly like a key that does not exist."""
    key = await db.scalar(select(ApiKey).where(ApiKey.id == key_id, ApiKey.user_id == user_id))
    if key is None:
        raise NotFoundError("API key not found")
    return key


async def get_any(db: AsyncSession, key_id: int) -> ApiKey:
    return await get_or_404(db, ApiKey, key_id, "API key")


async def update(db: AsyncSession, key: ApiKey, changes: dict[str, object]) -> ApiKey:
    if key.revoked_at is not None:
        raise ConflictError("A revoked key cannot be changed", code="key_revoked")
    if "name" in changes and isinstance(changes["name"], str):
        key.name = changes["name"]
    if "expires_at" in changes:
        value = changes["expires_at"]
        key.expires_at = _future_expiry(value if isinstance(value, datetime) else None)
    if "models" in changes:
        models = changes["models"]
        key.models = list(models) if isinstance(models, list) else None
    for limit in ("rpm_limit", "concurrent_streams_limit"):
        if limit in changes:
            value = changes[limit]
            setattr(key, limit, value if isinstance(value, int) else None)
    apply_budget(key, changes)
    await db.flush()
    announce(db, "credentials")
    return key


async def revoke(db: AsyncSession, key: ApiKey) -> ApiKey:
    """Revoked keys stay listed (their calls remain in the logs) but never work again."""
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        await db.flush()
        announce(db, "credentials")
    return key


async def revoke_all_for_user(db: AsyncSession, user_id: int) -> int:
    """Revoke every key of an account (after a password reset, or a sign-out everywhere that
    asks for it). Returns how many were still working."""
    result = await db.execute(
        sql_update(ApiKey)
        .where(ApiKey.user_id == user_id, ApiKey.revoked_at.is_(None))
        .values(revoked_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    revoked = int(getattr(result, "rowcount", 0) or 0)
    if revoked:
        announce(db, "credentials")
    return revoked


async def admin_list(
    db: AsyncSession,
    page: PageParams,
    *,
    user_id: int | None = None,
    query: str | None = None,
    status: KeyStatus | None = None,
) -> tuple[list[AdminApiKeyRead], int]:
    now = utcnow()
    conditions = []
    if user_id is not None:
        conditions.append(ApiKey.user_id == user_id)
    if query:
        pattern = like_pattern(query.strip().lower())
        conditions.append(
            or_(
                func.lower(ApiKey.name).like(pattern, escape="\\"),
                User.username_key.like(pattern, escape="\\"),
                func.lower(ApiKey.prefix).like(pattern, escape="\\"),
            )
        )
    if status == "revoked":
        conditions.append(ApiKey.revoked_at.is_not(None))
    elif status == "expired":
        conditions += [ApiKey.revoked_at.is_(None), ApiKey.expires_at <= now]
    elif status == "active":
        conditions += [
            ApiKey.revoked_at.is_(None),
            or_(ApiKey.expires_at.is_(None), ApiKey.expires_at > now),
        ]
    base = select(ApiKey, User.username).join(User, User.id == ApiKey.user_id).where(*conditions)
    total = await db.scalar(select(func.count()).select_from(base.subquery())) or 0
    rows = await db.execute(
        base.order_by(ApiKey.id.desc()).offset(page.offset).limit(page.page_size)
    )
    items = [
        AdminApiKeyRead(**to_read(key).model_dump(), username=username) for key, username in rows
    ]
    return items, total


async def authenticate(db: AsyncSession, plaintext: str) -> tuple[ApiKey, User]:
    """Resolve a presented key to (key, user), or 401 saying why (the caller holds the key)."""
    found = (
        await db.execute(
            select(ApiKey, User)
            .join(User, User.id == ApiKey.user_id)
            .where(ApiKey.key_hash == hash_api_key(plaintext))
        )
    ).first()
    if found is None:
        raise UnauthorizedError("Invalid API key", code="invalid_api_key")
    key, user = found
    key_status = status_of(key)
    if key_status == "revoked":
        raise UnauthorizedError("This API key has been revoked", code="api_key_revoked")
    if key_status == "expired":
        raise UnauthorizedError("This API key has expired", code="api_key_expired")
    if not user.is_active:
        raise UnauthorizedError("This account is disabled", code="account_disabled")
    return key, user
