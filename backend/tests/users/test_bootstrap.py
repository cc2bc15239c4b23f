from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import create_async_engine

from app.core.app_secrets import ConfigError
from app.core.db import create_engine
from app.main import create_app
from app.models import User, UserRole
from app.models.base import utcnow
from tests.conftest import DatabaseTarget, HarnessFactory, make_settings
from tests.processes import app_env, start_cli

GENERATED = re.compile(r"Generated password:\s+(\S+)")


@pytest.fixture
def database(fresh_database: DatabaseTarget) -> DatabaseTarget:
    """These tests are about a first start: each app here starts on an empty database."""
    return fresh_database


async def test_admin_from_environment_can_sign_in_and_is_created_once(
    harness_factory: HarnessFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    first = await harness_factory(admin={"username": "chief", "password": "chief's password"})
    assert "First admin account created: chief" in capsys.readouterr().out
    tokens = await first.login("chief", "chief's password")
    assert tokens["user"]["role"] == "admin"
    # A second start (same database) creates and prints nothing, even with other values.
    await harness_factory(admin={"username": "other", "password": "other password"})
    assert "First admin" not in capsys.readouterr().out
    admin = {"Authorization": f"Bearer {tokens['access_token']}"}
    admins = await first.client.get("/api/admin/users", params={"role": "admin"}, headers=admin)
    assert [u["username"] for u in admins.json()["items"]] == ["chief"]


async def test_generated_password_is_printed_once_and_works(
    harness_factory: HarnessFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    harness = await harness_factory(admin={"username": "admin", "password": None})
    output = capsys.readouterr().out
    match = GENERATED.search(output)
    assert match, output
    password = match.group(1)
    assert len(password) >= 16
    await harness.login("admin", password)
    await harness_factory(admin={"username": "admin", "password": None})
    assert "Generated password" not in capsys.readouterr().out


@pytest.mark.parametrize(
    ("admin", "message"),
    [
        ({"password": "short"}, "ADMIN_PASSWORD must be at least 8 characters"),
        ({"password": "        "}, "ADMIN_PASSWORD must be at least 8 characters"),
        ({"username": "no spaces allowed"}, "ADMIN_USERNAME is not a valid username"),
    ],
)
def test_unusable_admin_settings_stop_the_start(
    tmp_path: Path, database: DatabaseTarget, admin: dict[str, object], message: str
) -> None:
    values = {k: SecretStr(v) if k == "password" else v for k, v in admin.items()}
    with pytest.raises(ConfigError, match=message):
        create_app(make_settings(tmp_path, database, admin=values))


async def _count_admins(database: DatabaseTarget, tmp_path: Path) -> int:
    settings = make_settings(tmp_path, database)
    engine = create_engine(settings)
    try:
        async with engine.connect() as conn:
            return int(
                await conn.scalar(
                    select(func.count()).select_from(User).where(User.role == UserRole.ADMIN)
                )
                or 0
            )
    finally:
        await engine.dispose()


@pytest.mark.slow
async def test_concurrent_first_starts_create_exactly_one_admin(
    tmp_path: Path, fresh_database: DatabaseTarget
) -> None:
    """Four processes start at once on an empty database: one admin, one printed password."""
    env = app_env(tmp_path / "data", fresh_database)
    procs = [start_cli(["bootstrap"], env) for _ in range(4)]
    results = [proc.communicate(timeout=120) for proc in procs]
    for proc, (_out, err) in zip(procs, results, strict=True):
        assert proc.returncode == 0, err
    printed = [GENERATED.search(out) for out, _ in results]
    assert sum(1 for match in printed if match) == 1, [out for out, _ in results]
    assert await _count_admins(fresh_database, tmp_path) == 1


@pytest.mark.slow
async def test_existing_non_admin_with_the_admin_name_is_a_clear_error(
    tmp_path: Path, fresh_database: DatabaseTarget
) -> None:
    env = app_env(tmp_path / "data", fresh_database)
    migrate = start_cli(["migrate"], env)
    _, err = migrate.communicate(timeout=120)
    assert migrate.returncode == 0, err
    engine = create_async_engine(
        fresh_database.url,
        connect_args={"server_settings": {"search_path": fresh_database.pg_schema}}
        if fresh_database.pg_schema
        else {},
    )
    async with engine.begin() as conn:
        await conn.execute(
            User.__table__.insert().values(
                username="admin",
                username_key="admin",
                password_hash="x",
                role="user",
                status="active",
                created_at=utcnow(),
                updated_at=utcnow(),
                password_changed_at=utcnow(),
            )
        )
    await engine.dispose()
    proc = start_cli(["bootstrap"], env)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2
    assert "ADMIN_USERNAME 'admin' is taken by an existing non-admin account" in err
