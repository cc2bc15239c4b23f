"""The process's own secrets: the token-signing key and the Fernet keys for data encrypted at rest.

Both come from the environment. In development, when unset, each is generated once and kept under
`DATA_DIR` with mode 0600 so restarts keep sessions and encrypted data readable. In production an unset
secret stops the start. Weak, short or well-known example values are always refused.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import logging
import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

from cryptography.fernet import Fernet

from app.core.config import Settings

logger = logging.getLogger(__name__)

SIGNING_KEY_FILE = "secret_key"
ENCRYPTION_KEYS_FILE = "encryption_keys"
MIN_SIGNING_KEY_BYTES = 32
MIN_DISTINCT_CHARS = 10
# Fragments of placeholder values seen in example files and tutorials.
WEAK_FRAGMENTS = (
    "changeme",
    "change-me",
    "change_me",
    "changethis",
    "your-secret",
    "your_secret",
    "yoursecret",
    "secret-key-here",
    "supersecret",
    "replace-me",
    "replace_me",
    "example",
    "placeholder",
    "dontuse",
    "do-not-use",
    "insecure",
)
GENERATE_HINT = "python -c 'import secrets; print(secrets.token_urlsafe(48))'"
FERNET_HINT = (
    "python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"
)


class ConfigError(Exception):
    """A setting makes it unsafe or impossible to start. The message says how to fix it."""


@dataclass(frozen=True)
class AppSecrets:
    signing_key: str
    encryption_keys: tuple[bytes, ...]


def check_signing_key(value: str) -> None:
    if len(value.encode()) < MIN_SIGNING_KEY_BYTES:
        raise ConfigError(
            f"SECRET_KEY is too short: it needs at least {MIN_SIGNING_KEY_BYTES} bytes. "
            f"Generate one with: {GENERATE_HINT}"
        )
    lowered = value.lower()
    if any(fragment in lowered for fragment in WEAK_FRAGMENTS):
        raise ConfigError(
            f"SECRET_KEY looks like an example value. Generate a real one with: {GENERATE_HINT}"
        )
    if len(set(value)) < MIN_DISTINCT_CHARS:
        raise ConfigError(
            f"SECRET_KEY has too few distinct characters to be random. "
            f"Generate one with: {GENERATE_HINT}"
        )


def parse_encryption_keys(value: str) -> tuple[bytes, ...]:
    keys: list[bytes] = []
    for position, part in enumerate(value.split(","), start=1):
        part = part.strip()
        if not part:
            continue
        try:
            raw = base64.urlsafe_b64decode(part.encode())
        except (binascii.Error, ValueError):
            raw = b""
        if len(raw) != 32:
            raise ConfigError(
                f"ENCRYPTION_KEYS entry {position} is not a Fernet key "
                f"(32 url-safe base64 bytes). Generate one with: {FERNET_HINT}"
            )
        if len(set(raw)) < MIN_DISTINCT_CHARS:
            raise ConfigError(
                f"ENCRYPTION_KEYS entry {position} is not random. Generate one with: {FERNET_HINT}"
            )
        keys.append(part.encode())
    if not keys:
        raise ConfigError(f"ENCRYPTION_KEYS is empty. Generate a key with: {FERNET_HINT}")
    return tuple(keys)


def _read_or_create(path: Path, generate: str) -> str:
    """Return the file's content, creating it atomically with mode 0600 if it does not exist.

    Two processes starting at once both end up with the same value: the file is written under a
    temporary name and hard-linked into place, which fails for the loser, who then reads the winner's.
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not path.exists():
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(generate + "\n")
            with contextlib.suppress(FileExistsError):
                os.link(tmp, path)
                logger.info("Generated %s (kept with mode 0600)", path)
        finally:
            tmp.unlink(missing_ok=True)
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        path.chmod(0o600)
        logger.warning("Tightened permissions of %s to 0600", path)
    return path.read_text(encoding="utf-8").strip()


def load_app_secrets(settings: Settings) -> AppSecrets:
    data_dir = settings.server.data_dir
    configured_key = settings.security.secret_key
    if configured_key is not None:
        signing_key = configured_key.get_secret_value()
    elif settings.is_production:
        raise ConfigError(
            f"SECRET_KEY must be set in production. Generate one with: {GENERATE_HINT}"
        )
    else:
        signing_key = _read_or_create(data_dir / SIGNING_KEY_FILE, secrets.token_urlsafe(48))
    check_signing_key(signing_key)

    configured_enc = settings.security.encryption_keys
    if configured_enc is not None:
        enc_value = configured_enc.get_secret_value()
    elif settings.is_production:
        raise ConfigError(
            f"ENCRYPTION_KEYS must be set in production. Generate one with: {FERNET_HINT}"
        )
    else:
        enc_value = _read_or_create(data_dir / ENCRYPTION_KEYS_FILE, Fernet.generate_key().decode())
    return AppSecrets(signing_key=signing_key, encryption_keys=parse_encryption_keys(enc_value))
