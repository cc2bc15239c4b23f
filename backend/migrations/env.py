"""Alembic environment.

The app runs migrations itself on a connection it already holds (`app.core.migrate`), passed in as
`config.attributes["connection"]`. Run from the `alembic` command line, this builds an engine from the
same settings the server uses.
"""

from __future__ import annotations

import asyncio
from typing import Any

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy.engine import Connection

import app.models  # noqa: F401  (registers every table)
from app.models.base import Base, UTCDateTime

target_metadata = Base.metadata


def render_item(type_: str, obj: Any, autogen_context: AutogenContext) -> str | bool:
    """Migrations stay independent of app code: UTCDateTime is written as a plain timestamptz."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def run_on_connection(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        render_item=render_item,
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_from_settings() -> None:
    from app.core.config import Settings
    from app.core.db import create_engine

    engine = create_engine(Settings())
    try:
        async with engine.begin() as connection:
            await connection.run_sync(run_on_connection)
    finally:
        await engine.dispose()


def run_offline() -> None:
    from app.core.config import Settings
    from app.core.db import database_url

    context.configure(
        url=database_url(Settings()),
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_offline()
else:
    shared = context.config.attributes.get("connection")
    if shared is not None:
        run_on_connection(shared)
    else:
        asyncio.run(run_from_settings())
