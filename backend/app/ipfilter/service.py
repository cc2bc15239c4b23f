"""IP rules: validation (canonical CIDR text, confirmation for dangerous rules), CRUD, loading."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.client_ip import parse_ip
from app.core.db import get_or_404
from app.core.errors import ConflictError, UnprocessableError
from app.core.events import announce
from app.core.pagination import PageParams, like_pattern, paginate
from app.ipfilter.cache import in_force
from app.models.base import utcnow
from app.models.ip_rule import BlockedAttempt, IPRule
from app.models.user import User

CATCH_ALL_PREFIX = 0


def parse_rule(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """Canonical network for `text`; 422 for anything that is not exactly an address or a range.

    A range with host bits set (`10.0.0.1/8`) is refused rather than silently widened, because the
    admin most likely meant something else; the message names the range it would be. IPv4-mapped
    IPv6 (`::ffff:10.1.2.3`) is stored as IPv4, the way client addresses are compared.
    """
    value = text.strip()
    try:
        network = ipaddress.ip_network(value, strict=True)
    except ValueError:
        try:
            loose = ipaddress.ip_network(value, strict=False)
        except ValueError:
            raise UnprocessableError(
                f"cidr: {value!r} is not an IP address or CIDR range", param="cidr"
            ) from None
        raise UnprocessableError(
            f"cidr: {value!r} has host bits set; the range it lies in is {loose}",
            param="cidr",
            code="host_bits_set",
        ) from None
    if isinstance(network, ipaddress.IPv6Network):
        mapped = network.network_address.ipv4_mapped
        if mapped is not None and network.prefixlen >= 96:
            network = ipaddress.ip_network(f"{mapped}/{network.prefixlen - 96}")
    return network


def _check_confirmation(
    network: ipaddress.IPv4Network | ipaddress.IPv6Network, admin_ip: str, confirm: bool
) -> None:
    if confirm:
        return
    if network.prefixlen == CATCH_ALL_PREFIX:
        raise ConflictError(
            f"{network} blocks every {'IPv4' if network.version == 4 else 'IPv6'} client. "
            "Send confirm: true to create it anyway.",
            code="confirmation_required",
        )
    own = parse_ip(admin_ip)
    if own is not None and own.version == network.version and own in network:
        raise ConflictError(
            f"{network} includes your own address ({own}); you would lock yourself out. "
            "Send confirm: true to create it anyway.",
            code="confirmation_required",
        )


def _check_expiry(changes: dict[str, Any]) -> None:
    expires_at = changes.get("expires_at")
    if expires_at is not None:
        if expires_at.tzinfo is None:
            raise UnprocessableError(
                "expires_at: give a time zone (e.g. 2026-12-31T00:00:00Z)", param="expires_at"
            )
        if expires_at <= utcnow():
            raise UnprocessableError("expires_at: must be in the future", param="expires_at")


async def create(db: AsyncSession, actor: User, actor_ip: str, fields: dict[str, Any]) -> IPRule:
    network = parse_rule(fields["cidr"])
    _check_expiry(fields)
    if fields.get("enabled", True):
        _check_confirmation(network, actor_ip, bool(fields.get("confirm")))
    rule = IPRule(
        cidr=str(network),
        reason=fields.get("reason") or "",
        enabled=fields.get("enabled", True),
        expires_at=fields.get("expires_at"),
        created_by_id=actor.id,
        created_by=actor.username,
    )
    db.add(rule)
    try:
        async with db.begin_nested():
            await db.flush()
    except IntegrityError:
        raise ConflictError(f"A rule for {network} already exists", code="duplicate_rule") from None
    announce(db, "ip_rules")
    return rule


async def update(db: AsyncSession, rule: IPRule, actor_ip: str, changes: dict[str, Any]) -> IPRule:
    confirm = bool(changes.pop("confirm", False))
    _check_expiry(changes)
    if changes.get("enabled") and not rule.enabled:
        _check_confirmation(ipaddress.ip_network(rule.cidr), actor_ip, confirm)
    for name in ("reason", "enabled"):
        if changes.get(name) is not None:
            setattr(rule, name, changes[name])
    if "expires_at" in changes:
        rule.expires_at = changes["expires_at"]
    await db.flush()
    announce(db, "ip_rules")
    return rule


async def get(db: AsyncSession, rule_id: int) -> IPRule:
    return await get_or_404(db, IPRule, rule_id, "IP rule")


async def delete(db: AsyncSession, rule: IPRule) -> None:
    await db.delete(rule)
    await db.flush()
    announce(db, "ip_rules")


async def list_rules(
    db: AsyncSession, page: PageParams, *, query: str | None, active_only: bool
) -> tuple[Sequence[IPRule], int]:
    stmt = select(IPRule).order_by(IPRule.id.desc())
    if query:
        pattern = like_pattern(query)
        stmt = stmt.where(
            IPRule.cidr.like(pattern, escape="\\") | IPRule.reason.like(pattern, escape="\\")
        )
    if active_only:
        stmt = stmt.where(in_force(utcnow()))
    return await paginate(db, stmt, page)


def is_active(rule: IPRule) -> bool:
    return rule.enabled and (rule.expires_at is None or rule.expires_at > utcnow())


async def list_attempts(
    db: AsyncSession, page: PageParams, *, ip: str | None, rule_id: int | None
) -> tuple[Sequence[BlockedAttempt], int]:
    stmt = select(BlockedAttempt).order_by(
        BlockedAttempt.last_seen.desc(), BlockedAttempt.id.desc()
    )
    if ip:
        stmt = stmt.where(BlockedAttempt.ip.like(like_pattern(ip), escape="\\"))
    if rule_id is not None:
        stmt = stmt.where(BlockedAttempt.rule_id == rule_id)
    return await paginate(db, stmt, page)
