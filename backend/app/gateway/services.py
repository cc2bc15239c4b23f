"""The gateway's services, built together (see `app.composition`): the channel cache, the
gateway that routes and fails over, and `ModelCalls`, through which every model call is made."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.billing.budgets import Budgets
from app.core.config import GatewaySettings
from app.core.security import SecretBox
from app.gateway.breaker import CircuitBreaker
from app.gateway.cache import ChannelCache
from app.gateway.calls import ActiveStreams, Begin, ModelCalls, Price, Submit
from app.gateway.concurrency import ConcurrencyGate
from app.gateway.failover import AutoDisable
from app.gateway.http_client import HttpClient
from app.gateway.service import Gateway
from app.ratelimit.services import RateLimits
from app.runtime_settings.cache import RuntimeSettingsCache


@dataclass(frozen=True)
class GatewayServices:
    channels: ChannelCache
    gateway: Gateway
    calls: ModelCalls


def build(
    *,
    settings: GatewaySettings,
    sessionmaker: async_sessionmaker[AsyncSession],
    box: SecretBox,
    breaker: CircuitBreaker,
    gate: ConcurrencyGate,
    limits: RateLimits,
    runtime: RuntimeSettingsCache,
    http: Callable[[], HttpClient],
    auto_disable: AutoDisable,
    submit: Submit,
    begin: Begin,
    active: ActiveStreams,
    budgets: Budgets | None = None,
    price: Price | None = None,
) -> GatewayServices:
    channels = ChannelCache(sessionmaker, box, settings.channel_refresh_seconds)
    gateway = Gateway(
        settings=settings,
        registry=channels,
        breaker=breaker,
        gate=gate,
        limiter=limits.limiter,
        admission=limits.admission,
        runtime=runtime,
        client=http,
        auto_disable=auto_disable,
        budgets=budgets,
    )
    calls = ModelCalls(gateway, submit, begin=begin, active=active, price=price, budgets=budgets)
    return GatewayServices(channels, gateway, calls)
