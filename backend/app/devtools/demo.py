"""`python -m app demo`: the gateway with the mock upstream registered as a channel.

Starts the mock upstream in this process (MOCK_PORT, default 9100), adds a "Demo (mock upstream)"
channel if there is none, creates an API key for the first admin and prints a ready-to-run curl
command. Nothing here talks to a real provider.
"""

from __future__ import annotations

from sqlalchemy import select

from app.composition import AppContext
from app.core import migrate
from app.core.app_secrets import load_app_secrets
from app.core.config import Settings
from app.keys import service as key_service
from app.models import Channel, User, UserRole
from app.users import bootstrap

DEMO_CHANNEL = "Demo (mock upstream)"
DEMO_MODELS = ["mock-gpt", "mock-reasoner", "mock-think", "mock-slow", "mock-tools"]


async def seed(settings: Settings, mock_base_url: str) -> str | None:
    """Prepare the database for the demo. Returns a new API key, or None if none could be made."""
    ctx = AppContext.build(settings, load_app_secrets(settings))
    engine = ctx.open_database()
    try:
        await migrate.upgrade(engine)
        first_admin = await bootstrap.ensure_first_admin(
            ctx.sessionmaker, ctx.hasher, settings.admin
        )
        if first_admin is not None:
            bootstrap.announce(first_admin)
        async with ctx.sessionmaker() as db:
            channel = await db.scalar(select(Channel).where(Channel.name == DEMO_CHANNEL))
            if channel is None:
                gw = settings.gateway
                db.add(
                    Channel(
                        name=DEMO_CHANNEL,
                        base_url=mock_base_url,
                        api_key_encrypted=ctx.secret_box.encrypt("sk-mock-upstream"),
                        api_key_hint="sk-…ream",
                        models=DEMO_MODELS,
                        model_mapping={
                            "gpt-4o-mini": "mock-gpt",
                            "deepseek-reasoner": "mock-reasoner",
                        },
                        connect_timeout=gw.connect_timeout,
                        first_byte_timeout=gw.first_byte_timeout,
                        idle_timeout=gw.idle_timeout,
                        total_timeout=gw.total_timeout,
                        split_think=True,
                        notes="Created by `make demo`. Points at the built-in mock upstream.",
                    )
                )
            else:
                channel.base_url = mock_base_url
            admin = await db.scalar(
                select(User).where(User.role == UserRole.ADMIN).order_by(User.id)
            )
            plaintext = None
            if admin is not None:
                _, plaintext = await key_service.create(
                    db, admin, name="demo", expires_at=None, models=None
                )
            await db.commit()
        return plaintext
    finally:
        await ctx.close()


def instructions(base_url: str, api_key: str | None) -> str:
    key = api_key or "<an API key from the web app>"
    return f"""
Demo ready. The mock upstream answers models: {", ".join(DEMO_MODELS)}, gpt-4o-mini, deepseek-reasoner.
A streamed answer, through the gateway:

  curl -N {base_url}/v1/chat/completions \\
    -H "Authorization: Bearer {key}" -H "Content-Type: application/json" \\
    -d '{{"model": "mock-slow", "stream": true, "messages": [{{"role": "user", "content": "Hello"}}]}}'

Or with the OpenAI SDK: OpenAI(base_url="{base_url}/v1", api_key="{key}")
"""
