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


async def test_an_existing_sqlite_installation_stops_reusing_ids_and_keeps_every_row(
    tmp_path: Path, fresh_database: DatabaseTarget
) -> None:
    """Migration 0009 on a database with data: the owner tables are rebuilt as AUTOINCREMENT
    without losing a row (dropping `users` with foreign keys on would have cascaded), and the
    next ids start past every id still kept anywhere — here a deleted account's call logs and
    statistics."""
    if fresh_database.is_postgres:
        pytest.skip("PostgreSQL's sequences never reuse ids: the migration changes nothing")
    from app.models import ApiKey, Conversation, Message, User
    from app.models.base import utcnow

    engine = create_engine(make_settings(tmp_path, fresh_database))
    try:
        await migrate.upgrade(engine, "0008")
        async with engine.begin() as conn:
            for n in (1, 2, 3):
                await conn.execute(
                    User.__table__.insert().values(
                        id=n,
                        username=f"u{n}",
                        username_key=f"u{n}",
                        password_hash="x",
                        role="user",
                        status="active",
                    )
                )
                await conn.execute(
                    ApiKey.__table__.insert().values(
                        id=n, user_id=n, name="k", key_hash=f"h{n}", prefix="sk-", last4="abcd"
                    )
                )
            await conn.execute(Conversation.__table__.insert().values(id=1, user_id=2))
            await conn.execute(
                Message.__table__.insert().values(id=1, conversation_id=1, role="user")
            )
            # The table as it was at 0008 (the model has columns added since).
            await conn.execute(
                text(
                    "INSERT INTO usage_daily (day, dim, value, calls, errors, prompt_tokens, "
                    "completion_tokens, reasoning_tokens, cached_tokens, total_tokens, "
                    "ttft_sum_ms, ttft_count, duration_sum_ms) "
                    "VALUES (:day, 'user', '8', 1, 0, 0, 0, 0, 0, 0, 0, 0, 0)"
                ),
                {"day": utcnow().date().isoformat()},
            )
            await conn.execute(text("DELETE FROM users WHERE id = 3"))  # the newest account
        await migrate.upgrade(engine)
        async with engine.begin() as conn:
            counts = {
                table: (await conn.execute(text(f"SELECT count(*) FROM {table}"))).scalar()  # noqa: S608
                for table in ("users", "api_keys", "conversations", "messages")
            }
            assert counts == {"users": 2, "api_keys": 2, "conversations": 1, "messages": 1}
            ddl = (
                await conn.execute(text("SELECT sql FROM sqlite_master WHERE name = 'users'"))
            ).scalar()
            assert "AUTOINCREMENT" in str(ddl)
            assert (await conn.execute(text("PRAGMA foreign_key_check"))).fetchall() == []
            new_id = (
                await conn.execute(
                    User.__table__.insert()
                    .values(
                        username="new",
                        username_key="new",
                        password_hash="x",
                        role="user",
                        status="active",
                    )
                    .returning(User.__table__.c.id)
                )
            ).scalar()
            assert new_id == 9  # past the 8 that statistics still name
        # Foreign keys are on again for the app's connections.
        async with engine.connect() as conn:
            assert (await conn.execute(text("PRAGMA foreign_keys"))).scalar() == 1
    finally:
        await engine.dispose()
