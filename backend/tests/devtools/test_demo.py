from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select

from app.core.db import create_engine, create_sessionmaker
from app.devtools import demo
from app.keys import service as key_service
from app.models import Channel
from tests.conftest import DatabaseTarget, make_settings


async def test_demo_seed_registers_the_mock_once_and_makes_a_working_key(
    tmp_path: Path, fresh_database: DatabaseTarget
) -> None:
    settings = make_settings(tmp_path, fresh_database)
    first = await demo.seed(settings, "http://127.0.0.1:9100/v1")
    second = await demo.seed(settings, "http://127.0.0.1:9200/v1")
    assert first is not None
    assert second is not None
    engine = create_engine(settings)
    try:
        async with create_sessionmaker(engine)() as db:
            channels = (await db.scalars(select(Channel))).all()
            assert len(channels) == 1
            assert channels[0].base_url == "http://127.0.0.1:9200/v1"  # follows the mock's port
            assert channels[0].split_think is True
            _key, user = await key_service.authenticate(db, first)
            assert user.is_admin
            assert (await db.scalar(select(func.count()).select_from(Channel))) == 1
    finally:
        await engine.dispose()
    assert "curl -N" in demo.instructions("http://x", first)
