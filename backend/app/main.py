"""The application factory."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.types import ASGIApp

from app import __version__
from app.agents import service as agent_service
from app.agents.router import admin_router as admin_agents_router
from app.agents.router import router as agents_router
from app.auth.account_router import router as account_router
from app.auth.router import router as auth_router
from app.billing.balance_router import admin_router as balances_admin_router
from app.billing.balance_router import router as spending_router
from app.billing.router import router as prices_router
from app.channels import encryption
from app.channels.router import router as channels_router
from app.composition import AppContext
from app.conversations import stream_events
from app.conversations.router import admin_router as admin_conversations_router
from app.conversations.router import models_router as chat_models_router
from app.conversations.router import router as conversations_router
from app.core import migrate
from app.core.app_secrets import load_app_secrets
from app.core.config import Settings
from app.core.errors import install_error_handlers
from app.core.logging import configure_logging
from app.core.middleware import RequestContextMiddleware
from app.core.nul_guard import NulGuard
from app.core.spa import install_docs, mount_spa
from app.core.unexpected_errors import UnexpectedErrors
from app.gateway import openapi as gateway_openapi
from app.gateway.endpoints import OpenAIEndpoints
from app.health.router import router as health_router
from app.ipfilter.router import router as ip_rules_router
from app.keys.router import admin_router as admin_keys_router
from app.keys.router import router as keys_router
from app.logs.router import router as admin_logs_router
from app.logs.router import usage_router
from app.mail.router import router as admin_mail_router
from app.prompts.router import router as prompts_router
from app.runtime_settings.router import public_router as public_settings_router
from app.runtime_settings.router import router as settings_router
from app.stats import rollup
from app.stats.router import metrics_router
from app.stats.router import router as admin_stats_router
from app.stats.router import usage_router as usage_stats_router
from app.users import bootstrap
from app.users.avatar_router import router as avatar_router
from app.users.router import router as admin_users_router

logger = logging.getLogger(__name__)


def _operation_id(route: APIRoute) -> str:
    """`<tag>-<function>`: stable, readable names for a generated TypeScript client."""
    tag = route.tags[0] if route.tags else "default"
    return f"{tag}-{route.name}"


class GatewayApp(FastAPI):
    """FastAPI with the request context and the `/v1` hot path as the outermost layers.

    FastAPI puts its own error, telemetry and body-limit middleware outside anything added with
    `add_middleware`; measured under load, those cost the `/v1` relay more than 10 % of its
    throughput, so the hot path is placed in front of them. It handles its own errors.
    """

    def __init__(self, *, ctx: AppContext, **kwargs: Any) -> None:
        self._ctx = ctx
        super().__init__(**kwargs)

    def build_middleware_stack(self) -> ASGIApp:
        inner = super().build_middleware_stack()
        settings = self._ctx.settings
        return RequestContextMiddleware(
            OpenAIEndpoints(UnexpectedErrors(NulGuard(inner)), self._ctx),
            resolver=self._ctx.client_ip,
            guard=self._ctx.guard,
            max_body_bytes=settings.server.max_body_bytes,
            watchdog=self._ctx.send_watchdog,
            security_headers=self._ctx.security_headers,
        )


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    configure_logging(settings.server.log_level)
    bootstrap.check_settings(settings.admin)
    ctx = AppContext.build(settings, load_app_secrets(settings))

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        engine = ctx.open_database()
        try:
            if settings.database.auto_migrate:
                await migrate.upgrade(engine)
            await encryption.ensure(engine, ctx.secret_box)
            first_admin = await bootstrap.ensure_first_admin(
                ctx.sessionmaker, ctx.hasher, settings.admin
            )
            if first_admin is not None:
                bootstrap.announce(first_admin)
            await agent_service.ensure_default_agent(ctx.sessionmaker)
            await rollup.ensure_timezone(engine, settings.server.timezone)
            await ctx.load_shared_state()
            ctx.start_services()
            await ctx.begin_instance()
            yield
        finally:
            ctx.shutting_down = True
            await ctx.close()

    app = GatewayApp(
        ctx=ctx,
        title="AI Chat Gateway",
        version=__version__,
        description="OpenAI-compatible LLM gateway and team chat.",
        lifespan=lifespan,
        generate_unique_id_function=_operation_id,
        redoc_url=None,
        docs_url=None,  # served by install_docs, with Swagger UI from this server
        # FastAPI's native OpenTelemetry asks the global providers on every request (a measurable
        # share of a /v1 call); the gateway reports through its own call log and metrics instead.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.ctx = ctx
    install_error_handlers(app)
    for router in (
        health_router,
        auth_router,
        account_router,
        avatar_router,
        keys_router,
        admin_users_router,
        admin_keys_router,
        channels_router,
        settings_router,
        admin_mail_router,
        public_settings_router,
        ip_rules_router,
        prices_router,
        balances_admin_router,
        spending_router,
        agents_router,
        prompts_router,
        admin_agents_router,
        conversations_router,
        admin_conversations_router,
        chat_models_router,
        admin_stats_router,
        usage_stats_router,  # before usage_router: /api/usage/daily is not a log id
        admin_logs_router,
        usage_router,
        metrics_router,
    ):
        app.include_router(router)
    gateway_openapi.install(app)
    stream_events.install(app)
    install_docs(app, ctx.security_headers)
    mount_spa(app, ctx.security_headers)
    return app
