from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from app.core import migrate
from app.core.db import create_engine
from app.models import Base
from tests.conftest import DatabaseTarget, make_settings


def _diff(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


def _downgrade(connection: Connection) -> None:
    config = migrate.alembic_config()
    config.attributes["connection"] = connection
    command.downgrade(config, "base")


async def test_migrations_build_exactly_the_models_and_reverse_cleanly(
    tmp_path: Path, fresh_database: DatabaseTarget
) -> None:
    engine = create_engine(make_settings(tmp_path, fresh_database))
    try:
        await migrate.upgrade(engine)
        async with engine.connect() as conn:
            assert await conn.run_sync(_diff) == []
            assert {t.name for t in Base.metadata.sorted_tables} <= await conn.run_sync(_tables)
        # Upgrading again is a no-op.
        await migrate.upgrade(engine)
        async with engine.begin() as conn:
            await conn.run_sync(_downgrade)
        async with engine.connect() as conn:
            assert await conn.run_sync(_tables) <= {"alembic_version"}
        await migrate.upgrade(engine)
        async with engine.connect() as conn:
            assert await conn.run_sync(_diff) == []
    finally:
        await engine.dispose()


async def test_a_configured_postgresql_schema_is_created_on_first_start(
    tmp_path: Path, fresh_database: DatabaseTarget
) -> None:
    if not fresh_database.is_postgres:
        pytest.skip("DATABASE_PG_SCHEMA is PostgreSQL's")
    missing = DatabaseTarget(fresh_database.url, f"{fresh_database.pg_schema}_new")
    engine = create_engine(make_settings(tmp_path, missing))
    try:
        await migrate.upgrade(engine)
        await migrate.upgrade(engine)  # and found again on the next
        async with engine.connect() as conn:
            assert await conn.scalar(text("SELECT current_schema()")) == missing.pg_schema
            assert await conn.run_sync(_diff) == []
    finally:
        async with engine.begin() as conn:
            await conn.execute(text(f"DROP SCHEMA IF EXISTS {missing.pg_schema} CASCADE"))
        await engine.dispose()
