from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from app.core.config import DatabaseSettings, ServerSettings, Settings


def test_flat_environment_names_fill_the_groups(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "9123")
    monkeypatch.setenv("DATA_DIR", "/srv/gateway")
    monkeypatch.setenv("TRUSTED_PROXIES", "10.0.0.0/8, 192.168.1.5")
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:p@db/x")
    monkeypatch.setenv("ADMIN_USERNAME", "boss")
    monkeypatch.setenv("ADMIN_PASSWORD", "s3cret-pass-word")
    monkeypatch.setenv("AUTH_ACCESS_TOKEN_MINUTES", "5")
    monkeypatch.setenv("REDIS_URL", "redis://cache:6379/0")

    settings = Settings()

    assert settings.server.port == 9123
    assert settings.server.data_dir == Path("/srv/gateway")
    assert settings.server.trusted_proxies == ["10.0.0.0/8", "192.168.1.5"]
    assert settings.database.url is not None
    assert settings.database.url.get_secret_value() == "postgresql://u:p@db/x"
    assert settings.admin.username == "boss"
    assert settings.admin.password is not None
    assert settings.auth.access_token_minutes == 5
    assert settings.redis.url is not None
    # Secrets never show in a repr (and so never in a log line that prints settings).
    assert "s3cret" not in repr(settings)
    assert "u:p@" not in repr(settings)


def test_dotenv_file_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PORT", raising=False)
    (tmp_path / ".env").write_text("PORT=8181\nDATABASE_ECHO=true\n")
    monkeypatch.chdir(tmp_path)
    assert ServerSettings().port == 8181
    assert DatabaseSettings().echo is True


def test_invalid_values_are_rejected_with_the_field_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "99999")
    with pytest.raises(ValidationError, match="port"):
        ServerSettings(_env_file=None)
