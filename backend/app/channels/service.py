"""Channels: CRUD with encrypted keys, status changes, a live test, and fetching model lists."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

import orjson
from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.channels.schemas import (
    RESPONSES_TYPES,
    RESPONSES_TYPES_MESSAGE,
    ChannelCreate,
    ChannelTestResult,
    ChannelUpdate,
)
from app.core.config import GatewaySettings
from app.core.db import commit, get_or_404
from app.core.errors import UnprocessableError
from app.core.events import announce
from app.core.pagination import PageParams, like_pattern
from app.core.security import SecretBox, UndecryptableError, mask_secret
from app.gateway import upstream
from app.gateway.dialects import CHAT, dialect_for
from app.gateway.http_client import HttpClient
from app.gateway.request import ModelRequest
from app.gateway.upstream import Timeouts, UpstreamError
from app.gateway.url_guard import (
    UpstreamAddressError,
    check_base_url,
    literal_ip,
    upstream_host,
)
from app.models import Channel, ChannelStatus
from app.models.base import utcnow

TEST_PROMPT = "Reply with the single word: ok"
AUTO_REASONS = frozenset({"auth_failed", "quota_exceeded"})


async def _check_url(base_url: str, allow_private: bool) -> None:
    try:
        await check_base_url(base_url, allow_private=allow_private)
    except UpstreamAddressError as exc:
        raise UnprocessableError(str(exc), code="base_url_refused", param="base_url") from None


def _store_key(channel: Channel, box: SecretBox, key: str) -> None:
    """Encrypt the key into the row, with the masked hint lists show."""
    key = key.strip()
    channel.api_key_encrypted = box.encrypt(key)
    channel.api_key_hint = mask_secret(key)


def _set_status(
    channel: Channel, status: ChannelStatus, reason: str | None, detail: str | None
) -> None:
    channel.status = status
    channel.status_reason = reason
    channel.status_detail = detail
    channel.status_changed_at = utcnow()


async def create(
    db: AsyncSession,
    box: SecretBox,
    settings: GatewaySettings,
    body: ChannelCreate,
    *,
    allow_private: bool,
) -> Channel:
    await _check_url(body.base_url, allow_private)
    channel = Channel(
        name=body.name,
        type=body.type,
        base_url=body.base_url,
        api_version=body.api_version,
        models=body.models,
        model_mapping=body.model_mapping,
        priority=body.priority,
        weight=body.weight,
        rpm_limit=body.rpm_limit,
        connect_timeout=body.connect_timeout or settings.connect_timeout,
        first_byte_timeout=body.first_byte_timeout or settings.first_byte_timeout,
        idle_timeout=body.idle_timeout or settings.idle_timeout,
        total_timeout=body.total_timeout or settings.total_timeout,
        split_think=body.split_think,
        responses_api=body.responses_api,
        tags=body.tags,
        notes=body.notes,
    )
    _store_key(channel, box, body.api_key.get_secret_value())
    if body.enabled:
        _set_status(channel, ChannelStatus.ENABLED, None, None)
    else:
        _set_status(channel, ChannelStatus.DISABLED, "admin", None)
    db.add(channel)
    await db.flush()
    announce(db, "channels")  # routing reloads here and on every process
    return channel


async def get(db: AsyncSession, channel_id: int) -> Channel:
    return await get_or_404(db, Channel, channel_id, "Channel")


async def update(
    db: AsyncSession,
    box: SecretBox,
    settings: GatewaySettings,
    channel: Channel,
    body: ChannelUpdate,
    *,
    allow_private: bool,
) -> Channel:
    changes = body.model_dump(exclude_unset=True)
    if "base_url" in changes and changes["base_url"] is not None:
        await _check_url(changes["base_url"], allow_private)
    changes.pop("api_key", None)
    if body.api_key is not None:
        _store_key(channel, box, body.api_key.get_secret_value())
        if channel.status is ChannelStatus.AUTO_DISABLED:
            # A new key answers "bad key" and "undecryptable key": back in service.
            _set_status(channel, ChannelStatus.ENABLED, None, None)
    nullable = {"rpm_limit", "notes", "api_version"}
    kind = changes.get("type") or channel.type
    version = changes.get("api_version", channel.api_version)
    if version is not None and kind != "azure":
        raise UnprocessableError(
            "api_version is for Azure OpenAI channels (type azure)", param="api_version"
        )
    if changes.get("responses_api", channel.responses_api) and kind not in RESPONSES_TYPES:
        raise UnprocessableError(RESPONSES_TYPES_MESSAGE, param="responses_api")
    for name, value in changes.items():
        if value is None and name not in nullable:
            continue
        setattr(channel, name, value)
    await db.flush()
    announce(db, "channels")  # routing reloads here and on every process
    return channel


async def set_enabled(db: AsyncSession, channel: Channel, enabled: bool) -> Channel:
    if enabled:
        _set_status(channel, ChannelStatus.ENABLED, None, None)
    else:
        _set_status(channel, ChannelStatus.DISABLED, "admin", None)
    await db.flush()
    announce(db, "channels")  # routing reloads here and on every process
    return channel


async def delete(db: AsyncSession, channel: Channel) -> None:
    await db.delete(channel)
    await db.flush()
    announce(db, "channels")  # routing reloads here and on every process


async def list_channels(
    db: AsyncSession,
    page: PageParams,
    *,
    query: str | None = None,
    status: ChannelStatus | None = None,
    model: str | None = None,
) -> tuple[Sequence[Channel], int]:
    conditions = []
    if query:
        pattern = like_pattern(query.strip().lower())
        conditions.append(
            or_(
                func.lower(Channel.name).like(pattern, escape="\\"),
                func.lower(Channel.base_url).like(pattern, escape="\\"),
                func.lower(Channel.notes).like(pattern, escape="\\"),
            )
        )
    if status is not None:
        conditions.append(Channel.status == status)
    rows = (
        await db.scalars(
            select(Channel).where(*conditions).order_by(Channel.priority.desc(), Channel.id)
        )
    ).all()
    if model:
        rows = [c for c in rows if model in c.models or model in c.model_mapping]
    total = len(rows)
    return rows[page.offset : page.offset + page.page_size], total


async def auto_disable(
    sessionmaker: async_sessionmaker[AsyncSession], channel_id: int, reason: str, detail: str
) -> None:
    """The gateway's own switch-off (bad key, quota). Never overrides an admin's disable."""
    async with sessionmaker() as db:
        channel = await db.get(Channel, channel_id)
        if channel is None or channel.status is not ChannelStatus.ENABLED:
            return
        _set_status(channel, ChannelStatus.AUTO_DISABLED, reason, detail[:2000])
        announce(db, "channels")
        await commit(db)


def default_timeouts(settings: GatewaySettings) -> Timeouts:
    """What a new channel gets unless it says otherwise."""
    return Timeouts(
        connect=settings.connect_timeout,
        first_byte=settings.first_byte_timeout,
        idle=settings.idle_timeout,
        total=settings.total_timeout,
    )


def timeouts_of(channel: Channel) -> Timeouts:
    return Timeouts(
        connect=channel.connect_timeout,
        first_byte=channel.first_byte_timeout,
        idle=channel.idle_timeout,
        total=channel.total_timeout,
    )


def decrypt_key(box: SecretBox, channel: Channel) -> str:
    try:
        return box.decrypt(channel.api_key_encrypted)
    except UndecryptableError:
        raise UnprocessableError(
            "This channel's key cannot be decrypted with the configured ENCRYPTION_KEYS; "
            "enter the key again",
            code="key_undecryptable",
            param="api_key",
        ) from None


async def probe(
    client: HttpClient,
    channel: Channel,
    api_key: str,
    model: str,
    allow_private: bool,
) -> ChannelTestResult:
    """One small real request; latency and the error (key scrubbed) are reported."""
    payload = {
        "model": channel.model_mapping.get(model, model),
        "messages": [{"role": "user", "content": TEST_PROMPT}],
        "max_tokens": 5,
        "stream": False,
    }
    started = time.perf_counter()
    status_code: int | None = None
    error: str | None = None
    timeouts = timeouts_of(channel)
    dialect = dialect_for(channel.type)
    upstream_model = str(payload["model"])
    request = ModelRequest(
        body=payload, model=model, stream=False, include_usage=False, messages=[]
    )
    try:
        upstream.check_literal_address(literal_ip(upstream_host(channel.base_url)), allow_private)
        async with asyncio.timeout(timeouts.first_byte + timeouts.idle):
            url = dialect.url(channel.base_url, channel.api_version, CHAT, upstream_model, False)
            response = await upstream.open_post(
                client,
                upstream.prepare_post(url, dialect.headers(api_key)),
                dialect.body(request, upstream_model),
                timeouts.connect,
                api_key,
            )
            status_code = response.status
            try:
                raw = await upstream.read_body(response, 1024 * 1024)
            finally:
                response.close()
        parsed = orjson.loads(raw)
        if isinstance(parsed, dict):
            parsed = dialect.answer(parsed, upstream_model)
        if not isinstance(parsed, dict) or "choices" not in parsed:
            error = "upstream answered 200 without 'choices'"
    except UpstreamError as exc:
        status_code = exc.status
        error = exc.message
    except TimeoutError:
        error = "upstream did not answer in time"
    except orjson.JSONDecodeError:
        error = "upstream answered with invalid JSON"
    latency_ms = int((time.perf_counter() - started) * 1000)
    return ChannelTestResult(
        ok=error is None, latency_ms=latency_ms, model=model, status_code=status_code, error=error
    )


async def record_test(db: AsyncSession, channel: Channel, result: ChannelTestResult) -> None:
    channel.last_test_at = utcnow()
    channel.last_test_ok = result.ok
    channel.last_test_latency_ms = result.latency_ms
    channel.last_test_error = result.error
    await db.flush()


async def fetch_models(
    client: HttpClient,
    base_url: str,
    api_key: str,
    timeouts: Timeouts,
    allow_private: bool,
    *,
    kind: str = "openai",
    api_version: str | None = None,
) -> list[str]:
    dialect = dialect_for(kind)
    refusal = dialect.list_refusal(api_version)
    if refusal is not None:
        raise UnprocessableError(refusal, code="fetch_models_failed")
    try:
        upstream.check_literal_address(literal_ip(upstream_host(base_url)), allow_private)
        data = await upstream.get_json(
            client, dialect.models_url(base_url), dialect.key_headers(api_key), api_key, timeouts
        )
    except UpstreamError as exc:
        raise UnprocessableError(
            f"Could not fetch models: {exc.message}", code="fetch_models_failed"
        ) from None
    names = dialect.model_names(data)
    if names is None:
        raise UnprocessableError(
            "Could not fetch models: the upstream's /models answer has no list",
            code="fetch_models_failed",
        )
    return sorted(dict.fromkeys(names))
