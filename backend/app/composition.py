"""The composition root. `AppContext`: everything one app instance owns, built by `create_app` and
opened by the lifespan.

The only module that knows every domain: it builds their services and wires them together. Routes
reach it through per-domain protocols (`app.core.deps`, `<domain>/context.py`), which
`_offers_what_every_domain_asks` below checks statically.

Routes reach it through dependencies (`app.core.deps`); services receive the pieces they need as
arguments and never see the context or the request. Things bound to the event loop (database engine,
HTTP client, background tasks) are created in `open()` and released in `close()`.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from dataclasses import dataclass, field
from typing import Any

import orjson
from redis.asyncio import Redis
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.auth.account_mail import AccountMail
from app.auth.context import AuthContext
from app.billing.budgets import Budgets, SpendSource
from app.billing.ledger import MemoryLedger, RedisLedger
from app.billing.prices import PriceBook
from app.channels import service as channel_service
from app.channels.admin import ChannelAdmin
from app.channels.context import ChannelsContext
from app.channels.health import probe_auto_disabled
from app.conversations import services as conversations
from app.conversations.chat import ChatTurns
from app.conversations.context import ChatContext
from app.conversations.replies import ReplyManager
from app.core.app_secrets import AppSecrets, ConfigError
from app.core.cache import RowCache
from app.core.client_ip import ClientIPResolver
from app.core.config import Settings
from app.core.db import create_engine, create_sessionmaker
from app.core.events import BUS_INFO, ChangeBus
from app.core.images import ImageDecoding
from app.core.instances import HEARTBEAT_SECONDS, InstanceRegistry
from app.core.redis import create_redis
from app.core.security import PasswordHasher, SecretBox, TokenCodec
from app.core.security_headers import SecurityHeaders
from app.core.send_watchdog import SWEEP_SECONDS, SendWatchdog
from app.core.tasks import Periodic, TaskSet
from app.gateway import services as gateway
from app.gateway.auth import ApiKeyCache
from app.gateway.breaker import CircuitBreaker
from app.gateway.cache import ChannelCache
from app.gateway.calls import ActiveStreams, ModelCalls
from app.gateway.concurrency import ConcurrencyGate
from app.gateway.context import GatewayContext
from app.gateway.endpoints import MODEL_CALL_PATHS
from app.gateway.http_client import HttpClient
from app.gateway.responses_store import ResponseStore
from app.gateway.service import Gateway
from app.gateway.upstream import create_client
from app.health.context import HealthContext
from app.ipfilter.attempts import AttemptRecorder
from app.ipfilter.cache import BlockListCache
from app.ipfilter.guard import ClientGuard
from app.logs.journal import Journal
from app.logs.recovery import recover
from app.logs.retention import Retention
from app.logs.writer import CallLogWriter
from app.mail.cache import MailConfigCache
from app.mail.context import MailContext
from app.mail.outbox import Outbox
from app.mail.spend_alerts import SpendAlertMail
from app.ratelimit import services as ratelimit
from app.ratelimit.admission import Admission
from app.ratelimit.limiter import RateLimiter
from app.ratelimit.slots import ConcurrencySlots
from app.runtime_settings import service as runtime_service
from app.runtime_settings.cache import RuntimeSettingsCache
from app.runtime_settings.context import RuntimeSettingsContext
from app.stats.context import StatsContext
from app.stats.metrics import Metrics
from app.stats.metrics_access import MetricsAccess
from app.users.context import UsersContext

logger = logging.getLogger(__name__)
GAUGE_SECONDS = 5.0
BREAKER_SIGNAL = "breaker"


@dataclass
class AppContext:
    settings: Settings
    secrets: AppSecrets
    hasher: PasswordHasher
    tokens: TokenCodec
    secret_box: SecretBox
    client_ip: ClientIPResolver
    redis: Redis | None
    bus: ChangeBus
    runtime: RuntimeSettingsCache
    limiter: RateLimiter
    slots: ConcurrencySlots
    admission: Admission
    guard: ClientGuard
    api_key_cache: ApiKeyCache
    breaker: CircuitBreaker
    gate: ConcurrencyGate
    metrics: Metrics
    metrics_access: MetricsAccess
    send_watchdog: SendWatchdog
    mail_config: MailConfigCache
    ledger: MemoryLedger | RedisLedger
    prices: PriceBook = field(default_factory=PriceBook)
    # Decoding uploaded images: a few at a time, memory given back after each.
    images: ImageDecoding = field(default_factory=ImageDecoding)
    security_headers: SecurityHeaders = field(default_factory=SecurityHeaders)
    streams: ActiveStreams = field(default_factory=ActiveStreams)
    # Short background jobs started by requests (e.g. preparing a password-reset mail).
    jobs: TaskSet = field(default_factory=TaskSet)
    shutting_down: bool = False
    # Created by open():
    engine: AsyncEngine = field(init=False, repr=False)
    sessionmaker: async_sessionmaker[AsyncSession] = field(init=False, repr=False)
    http: HttpClient = field(init=False, repr=False)
    registry: ChannelCache = field(init=False, repr=False)
    gateway: Gateway = field(init=False, repr=False)
    calls: ModelCalls = field(init=False, repr=False)
    budgets: Budgets = field(init=False, repr=False)
    responses: ResponseStore = field(init=False, repr=False)
    channel_admin: ChannelAdmin = field(init=False, repr=False)
    call_logs: CallLogWriter = field(init=False, repr=False)
    attempts: AttemptRecorder = field(init=False, repr=False)
    health: Periodic = field(init=False, repr=False)
    retention: Periodic = field(init=False, repr=False)
    gauges: Periodic = field(init=False, repr=False)
    stalled_sends: Periodic = field(init=False, repr=False)
    replies: ReplyManager = field(init=False, repr=False)
    chat: ChatTurns = field(init=False, repr=False)
    outbox: Outbox = field(init=False, repr=False)
    instance: InstanceRegistry = field(init=False, repr=False)
    instances: Periodic = field(init=False, repr=False)
    account_mail: AccountMail = field(init=False, repr=False)
    spend_alerts: Periodic = field(init=False, repr=False)
    _open: bool = field(default=False, repr=False)

    @classmethod
    def build(cls, settings: Settings, secrets: AppSecrets) -> AppContext:
        redis_url = settings.redis.url.get_secret_value() if settings.redis.url else None
        try:
            client_ip = ClientIPResolver(settings.server.trusted_proxies)
        except ValueError as exc:
            raise ConfigError(f"TRUSTED_PROXIES: {exc}") from None
        redis = (
            create_redis(
                redis_url,
                settings.redis.max_connections,
                settings.redis.pool_timeout_seconds,
            )
            if redis_url
            else None
        )
        prefix = settings.redis.key_prefix
        runtime = RuntimeSettingsCache(settings.runtime.values())
        ledger = RedisLedger(redis, prefix) if redis is not None else MemoryLedger()
        limits = ratelimit.build(
            redis, prefix, runtime, ledger if isinstance(ledger, MemoryLedger) else None
        )
        gate = ConcurrencyGate(runtime.current.llm_concurrency)
        runtime.listen(lambda _old, new: gate.resize(new.llm_concurrency))
        secret_box = SecretBox(secrets.encryption_keys)
        return cls(
            settings=settings,
            secrets=secrets,
            hasher=PasswordHasher(settings.auth),
            tokens=TokenCodec(secrets.signing_key, settings.auth),
            secret_box=secret_box,
            client_ip=client_ip,
            redis=redis,
            bus=ChangeBus(redis, prefix),
            runtime=runtime,
            limiter=limits.limiter,
            slots=limits.slots,
            admission=limits.admission,
            guard=ClientGuard(
                BlockListCache(),
                limits.admission.count_address,
                runtime,
                deferred_paths=MODEL_CALL_PATHS,
            ),
            api_key_cache=ApiKeyCache(settings.gateway.key_cache_seconds),
            breaker=CircuitBreaker(lambda: runtime.current),
            gate=gate,
            metrics=Metrics(),
            metrics_access=_metrics_access(settings),
            send_watchdog=SendWatchdog(lambda: runtime.current.send_timeout_seconds),
            mail_config=MailConfigCache(settings.mail, secret_box),
            ledger=ledger,
        )

    def allow_private_upstreams(self) -> bool:
        return self.runtime.current.allow_private_upstreams

    async def load_shared_state(self) -> None:
        """Runtime settings, mail settings and the IP blacklist from the database; each cache
        read again when a change is announced here or elsewhere."""
        await runtime_service.seed(self.sessionmaker, self.runtime.defaults)
        caches: dict[str, RowCache] = {
            "settings": self.runtime,
            "mail": self.mail_config,
            "ip_rules": self.guard.blocklist,
            "prices": self.prices,
        }
        for topic, cache in caches.items():
            await cache.reload(self.sessionmaker)
            self.bus.on(topic, functools.partial(cache.reload, self.sessionmaker))
        self.bus.on("channels", self._reload_channels)
        self.bus.on("credentials", self._forget_credentials)
        self.bus.on_signal(BREAKER_SIGNAL, self._follow_breaker)
        self.breaker.on_change = self._breaker_changed
        await self.bus.start()

    def _breaker_changed(self, key: tuple[int, str], seconds: float | None) -> None:
        """A breaker opened or closed here: the other processes route the same way."""
        self.bus.signal(BREAKER_SIGNAL, orjson.dumps([key[0], key[1], seconds]).decode())

    async def _follow_breaker(self, arg: str) -> None:
        channel_id, model, seconds = orjson.loads(arg)
        self.breaker.follow(
            (int(channel_id), str(model)), None if seconds is None else float(seconds)
        )

    def open_database(self) -> AsyncEngine:
        self.engine = create_engine(self.settings)
        # Services announce their changes on the bus through their session (`core.events`).
        self.sessionmaker = create_sessionmaker(self.engine, info={BUS_INFO: self.bus})
        return self.engine

    def start_services(self) -> None:
        """Start what needs a running loop and an open database: HTTP client, gateway, writers."""
        gw = self.settings.gateway
        self.http = create_client(self.allow_private_upstreams)
        self.instance = InstanceRegistry(self.engine, self.settings.server.data_dir)
        self.call_logs = CallLogWriter(
            self.engine,
            self.settings.call_log,
            self.settings.server.timezone,
            on_written=self.metrics.observe_batch,
            journal=Journal(self.instance.id),
            price=self.prices.cost_of,
        )
        self.call_logs.start()
        self.budgets = Budgets(
            self.ledger,
            self.prices,
            SpendSource(self.sessionmaker, self.call_logs.pending_cost),
            self.settings.server.timezone,
            lambda: self.runtime.current.budget_output_tokens,
        )
        self.channel_admin = ChannelAdmin(
            box=self.secret_box,
            settings=gw,
            breaker=self.breaker,
            http=lambda: self.http,
            allow_private=self.allow_private_upstreams,
        )
        models = gateway.build(
            settings=gw,
            sessionmaker=self.sessionmaker,
            box=self.secret_box,
            breaker=self.breaker,
            gate=self.gate,
            limits=ratelimit.RateLimits(self.limiter, self.slots, self.admission),
            runtime=self.runtime,
            http=lambda: self.http,
            auto_disable=self._auto_disable,
            submit=self.call_logs.submit,
            begin=self.call_logs.begin,
            active=self.streams,
            budgets=self.budgets,
            price=self.prices.cost_of,
        )
        self.registry, self.gateway, self.calls = models.channels, models.gateway, models.calls
        self.responses = ResponseStore(self.sessionmaker)
        self.responses.start()
        self.instances = Periodic("server-instances", HEARTBEAT_SECONDS, self._instance_tick)
        self.attempts = AttemptRecorder(self.engine)
        self.attempts.start()
        self.guard.recorder = self.attempts
        self.health = Periodic(
            "channel-health", gw.health_probe_interval_seconds, self._probe_channels
        )
        self.health.start()
        retention = Retention(
            self.engine,
            self.runtime,
            self.settings.call_log,
            self.redis,
            self.settings.redis.key_prefix,
        )
        self.retention = Periodic(
            "log-retention", self.settings.call_log.retention_interval_seconds, retention.run_once
        )
        self.retention.start()
        self.gauges = Periodic("metrics-gauges", GAUGE_SECONDS, self._update_gauges)
        self.gauges.start()
        self.stalled_sends = Periodic("send-watchdog", SWEEP_SECONDS, self.send_watchdog.sweep)
        self.stalled_sends.start()
        chat = conversations.build(
            settings=self.settings.chat,
            calls=self.calls,
            channels=self.registry,
            sessionmaker=self.sessionmaker,
            runtime=self.runtime,
            bus=self.bus,
            redis=self.redis,
            prefix=self.settings.redis.key_prefix,
        )
        self.replies, self.chat = chat.replies, chat.chat
        self.outbox = Outbox(
            self.settings.mail,
            lambda: self.mail_config.current,
            self.sessionmaker,
            self.secret_box,
        )
        self.outbox.start()
        self.spend_alerts = Periodic(
            "spend-alerts",
            self.settings.mail.spend_alert_interval_seconds,
            SpendAlertMail(
                self.sessionmaker,
                self.outbox,
                lambda: self.mail_config.current,
                self.runtime,
                self.settings.server.timezone,
            ).run_once,
        )
        self.spend_alerts.start()
        self.account_mail = AccountMail(
            outbox=self.outbox,
            smtp=lambda: self.mail_config.current,
            runtime=self.runtime,
            settings=self.settings.auth,
            limiter=self.limiter,
        )
        self._open = True

    async def begin_instance(self) -> None:
        """Register this process, finish what dead ones left running, then keep checking."""
        await self.instance.register()
        try:
            await recover(self.engine, self.call_logs, self.instance)
        except (SQLAlchemyError, OSError) as exc:  # tried again on every heartbeat
            logger.warning("Finishing what stopped servers left running failed: %s", exc)
        self.instances.start()

    async def _instance_tick(self) -> None:
        await self.instance.heartbeat()
        await recover(self.engine, self.call_logs, self.instance)

    async def _update_gauges(self) -> None:
        self.metrics.set_gauges(self.gauge_values)

    def gauge_values(self) -> dict[str, Any]:
        return {
            "in_flight": self.gate.in_use,
            "queued": self.gate.waiting,
            "log_queue": self.call_logs.pending,
            "replies": self.replies.running_here,
            "breakers": self.breaker.counts(),
            "tasks": len(asyncio.all_tasks()),
        }

    async def drain(self, grace_seconds: float) -> None:
        """After a stop signal: let running calls finish for `grace_seconds`, then end the rest
        with a final event — `/v1` streams with an error frame, chat replies stored as stopped
        (their followers get `done`) — so nothing is cut off silently when the server stops."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace_seconds
        # A shutdown wait, polled ten times a second.
        while (len(self.streams) or self.replies.running_here) and loop.time() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.1)
        interrupted = self.streams.interrupt_all()
        if interrupted or self.replies.running_here:
            logger.info(
                "Shutting down: ended %d streams and %d chat replies still running",
                interrupted,
                self.replies.running_here,
            )
        await self.replies.shutdown()

    async def _auto_disable(self, channel_id: int, reason: str, detail: str) -> None:
        await channel_service.auto_disable(self.sessionmaker, channel_id, reason, detail)

    async def _probe_channels(self) -> list[int]:
        return await probe_auto_disabled(
            self.sessionmaker, self.http, self.secret_box, self.allow_private_upstreams()
        )

    async def _reload_channels(self) -> None:
        if self._open:
            await self.registry.reload(self.sessionmaker)

    async def _forget_credentials(self) -> None:
        self.api_key_cache.clear()

    async def close(self) -> None:
        await self.bus.stop()
        if self._open:
            await self.replies.shutdown()  # replies store their messages and call-log rows
            await self.jobs.drain()
            await self.calls.settling.drain()  # reservations released before Redis closes
            await self.spend_alerts.stop()
            await self.outbox.stop()
            await self.health.stop()
            await self.retention.stop()
            await self.gauges.stop()
            await self.stalled_sends.stop()
            await self.instances.stop()
            await self.responses.stop()
            await self.call_logs.stop()
            await self.instance.close()
            self.guard.recorder = None
            await self.attempts.stop()
            await self.http.close()
            self._open = False
        self.metrics.close()
        await self.slots.close()
        if self.redis is not None:
            await self.redis.aclose()
        if hasattr(self, "engine"):
            await self.engine.dispose()


def _metrics_access(settings: Settings) -> MetricsAccess:
    try:
        return MetricsAccess(settings.metrics)
    except ValueError as exc:
        raise ConfigError(f"METRICS_ALLOW: {exc}") from None


def _offers_what_every_domain_asks(
    ctx: AppContext,
) -> tuple[
    AuthContext,
    ChannelsContext,
    ChatContext,
    GatewayContext,
    HealthContext,
    MailContext,
    RuntimeSettingsContext,
    StatsContext,
    UsersContext,
]:
    """Never called: mypy checks here that the context satisfies each domain's protocol."""
    return (ctx, ctx, ctx, ctx, ctx, ctx, ctx, ctx, ctx)
