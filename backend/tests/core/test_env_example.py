"""`.env.example` documents every process setting, and nothing that does not exist."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic_settings import BaseSettings

from app.core.config import Settings

ENV_EXAMPLE = Path(__file__).resolve().parents[3] / ".env.example"


def _setting_names() -> set[str]:
    names = set()
    for group in Settings.model_fields.values():
        cls = group.annotation
        assert isinstance(cls, type)
        assert issubclass(cls, BaseSettings)
        prefix = cls.model_config.get("env_prefix", "")
        names.update(f"{prefix}{field}".upper() for field in cls.model_fields)
    return names


def test_every_setting_is_documented_with_a_comment() -> None:
    text = ENV_EXAMPLE.read_text()
    documented = set(re.findall(r"^([A-Z][A-Z0-9_]+)=", text, flags=re.MULTILINE))
    assert documented == _setting_names()
    lines = text.splitlines()
    for index, line in enumerate(lines):
        if re.match(r"^[A-Z][A-Z0-9_]+=", line):
            # Each variable sits under a comment (possibly shared with the variables of its block).
            above = next(
                (prev for prev in reversed(lines[:index]) if not re.match(r"^[A-Z]", prev)), ""
            )
            assert above.startswith("#"), f"{line} has no comment above it"


def test_the_example_used_as_is_gives_the_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Copying .env.example to .env unchanged must work: empty values mean "not set"."""
    for name in _setting_names():
        monkeypatch.delenv(name, raising=False)
    (tmp_path / ".env").write_text(ENV_EXAMPLE.read_text())
    monkeypatch.chdir(tmp_path)
    settings = Settings()
    assert settings.server.port == 8000
    assert settings.server.trusted_proxies == []
    assert settings.database.url is None
    assert settings.database.pg_schema is None
    assert settings.redis.url is None
    assert settings.security.secret_key is None
    assert settings.admin.password is None
    assert settings.admin.username == "admin"
