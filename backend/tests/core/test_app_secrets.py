from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr

from app.core.app_secrets import (
    ConfigError,
    check_signing_key,
    load_app_secrets,
    parse_encryption_keys,
)
from app.core.config import SecuritySettings, ServerSettings, Settings


def _settings(data_dir: Path, environment: str = "development", **security: object) -> Settings:
    return Settings(
        server=ServerSettings(_env_file=None, data_dir=data_dir, environment=environment),
        security=SecuritySettings(_env_file=None, **security),
    )


def test_development_generates_secrets_once_with_private_permissions(tmp_path: Path) -> None:
    first = load_app_secrets(_settings(tmp_path / "data"))
    second = load_app_secrets(_settings(tmp_path / "data"))

    assert first == second
    assert len(first.signing_key) >= 32
    Fernet(first.encryption_keys[0])  # a usable key
    for name in ("secret_key", "encryption_keys"):
        mode = stat.S_IMODE((tmp_path / "data" / name).stat().st_mode)
        assert mode == 0o600, f"{name} has mode {oct(mode)}"


def test_loose_permissions_on_generated_file_are_tightened(tmp_path: Path) -> None:
    load_app_secrets(_settings(tmp_path))
    (tmp_path / "secret_key").chmod(0o644)
    load_app_secrets(_settings(tmp_path))
    assert stat.S_IMODE((tmp_path / "secret_key").stat().st_mode) == 0o600


def test_concurrent_first_starts_agree_on_one_secret(tmp_path: Path) -> None:
    script = (
        "import sys; from pathlib import Path;"
        "from app.core.app_secrets import load_app_secrets;"
        "from app.core.config import Settings, ServerSettings, SecuritySettings;"
        "s = Settings(server=ServerSettings(_env_file=None, data_dir=Path(sys.argv[1])),"
        " security=SecuritySettings(_env_file=None));"
        "print(load_app_secrets(s).signing_key)"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "ENCRYPTION_KEYS")}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(tmp_path / "shared")],
            stdout=subprocess.PIPE,
            env=env,
            text=True,
        )
        for _ in range(4)
    ]
    outputs = {proc.communicate(timeout=60)[0].strip() for proc in procs}
    assert all(proc.returncode == 0 for proc in procs)
    assert len(outputs) == 1
    assert outputs == {(tmp_path / "shared" / "secret_key").read_text().strip()}


def test_production_refuses_to_start_without_secrets(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="SECRET_KEY must be set in production"):
        load_app_secrets(_settings(tmp_path, "production"))
    with pytest.raises(ConfigError, match="ENCRYPTION_KEYS must be set in production"):
        load_app_secrets(
            _settings(
                tmp_path,
                "production",
                secret_key=SecretStr("k9Xq2!vB7@pL0#eR4$tY6-w8Zm3^nH5&jU1*cF"),
            )
        )
    assert not (tmp_path / "secret_key").exists()


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("short-key", "too short"),
        ("changeme-changeme-changeme-changeme-1234", "example value"),
        ("your-secret-key-here-0123456789abcdefghij", "example value"),
        ("a" * 64, "too few distinct"),
        ("abababababababababababababababab", "too few distinct"),
    ],
)
def test_weak_signing_keys_are_refused(value: str, reason: str) -> None:
    with pytest.raises(ConfigError, match=reason):
        check_signing_key(value)


def test_weak_signing_key_from_environment_stops_start(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="too short"):
        load_app_secrets(_settings(tmp_path, secret_key=SecretStr("tiny")))


def test_encryption_keys_are_validated_and_rotation_lists_parse() -> None:
    new, old = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    assert parse_encryption_keys(f"{new}, {old}") == (new.encode(), old.encode())
    with pytest.raises(ConfigError, match="entry 2 is not a Fernet key"):
        parse_encryption_keys(f"{new},not-a-key")
    with pytest.raises(ConfigError, match="not random"):
        parse_encryption_keys("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
    with pytest.raises(ConfigError, match="empty"):
        parse_encryption_keys(" , ")
