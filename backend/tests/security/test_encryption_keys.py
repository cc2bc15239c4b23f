"""ENCRYPTION_KEYS against the data at rest, through the real command line: a wrong key stops the
start with a clear message, rotation re-encrypts every row, the database holds only ciphertext."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from app.core.security import SecretBox, UndecryptableError
from app.models import Base, Channel, MailConfig, MailOutboxEntry, User
from app.models.base import utcnow
from tests.conftest import ADMIN_PASSWORD, DatabaseTarget
from tests.live import UPSTREAM_KEY, LiveGateway
from tests.processes import app_env, free_port, start_cli

TOTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
WAITING_MAIL = "To: a@example.com\nSubject: Reset\n\nhttp://chat.example.test/reset?token=abc\n"
OLD_KEY = Fernet.generate_key().decode()
NEW_KEY = Fernet.generate_key().decode()


def _engine(database: DatabaseTarget) -> AsyncEngine:
    connect_args = (
        {"server_settings": {"search_path": database.pg_schema}} if database.pg_schema else {}
    )
    return create_async_engine(database.url, connect_args=connect_args)


def _run(
    args: list[str], env: dict[str, str], timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    proc = start_cli(args, env)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(f"`{' '.join(args)}` did not finish:\n{err[-2000:]}") from None
    return subprocess.CompletedProcess(args, proc.returncode, out, err)


async def _add_secrets(database: DatabaseTarget, box: SecretBox) -> None:
    """Two channels encrypted with `box`, one whose stored key is damaged, a user's two-factor
    secret, the SMTP password and a mail waiting to be sent."""
    engine = _engine(database)
    timeouts = {
        "connect_timeout": 5.0, "first_byte_timeout": 30.0, "idle_timeout": 30.0,
        "total_timeout": 60.0,
    }  # fmt: skip
    try:
        async with engine.begin() as conn:
            for name, token in (
                ("first", box.encrypt("sk-first-secret")),
                ("second", box.encrypt("sk-second-secret")),
                ("damaged", "gAAAAAB-not-a-fernet-token"),
            ):
                await conn.execute(
                    Channel.__table__.insert().values(
                        name=name, type="openai", base_url="http://127.0.0.1:9/v1",
                        api_key_encrypted=token, api_key_hint="sk-…cret", models=["m"],
                        model_mapping={}, priority=0, weight=1, status="enabled",
                        split_think=False, tags=[], **timeouts,
                    )
                )  # fmt: skip
            await conn.execute(update(User).values(totp_secret_encrypted=box.encrypt(TOTP_SECRET)))
            await conn.execute(
                MailConfig.__table__.insert().values(
                    id=1, host="127.0.0.1", port=25, security="none", username="u",
                    password_encrypted=box.encrypt("smtp-secret"), from_address="a@example.com",
                    from_name="", updated_at=utcnow(),
                )
            )  # fmt: skip
            await conn.execute(
                MailOutboxEntry.__table__.insert().values(
                    purpose="reset_password", message_encrypted=box.encrypt(WAITING_MAIL),
                    attempts=1, next_attempt_at=utcnow(), created_at=utcnow(),
                )
            )  # fmt: skip
    finally:
        await engine.dispose()


async def _stored_tokens(database: DatabaseTarget) -> dict[str, str]:
    """Every stored ciphertext: channels by name, then "totp", "smtp" and "mail"."""
    engine = _engine(database)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(select(Channel.name, Channel.api_key_encrypted))
            tokens = {name: token for name, token in rows}
            tokens["totp"] = str(await conn.scalar(select(User.totp_secret_encrypted)))
            tokens["smtp"] = str(await conn.scalar(select(MailConfig.password_encrypted)))
            tokens["mail"] = str(await conn.scalar(select(MailOutboxEntry.message_encrypted)))
            return tokens
    finally:
        await engine.dispose()


@pytest.mark.slow
def test_a_wrong_key_stops_the_start_and_rotation_re_encrypts_every_row(
    tmp_path: Path, fresh_database: DatabaseTarget
) -> None:
    def env(keys: str) -> dict[str, str]:
        return app_env(
            tmp_path / "data", fresh_database, ENCRYPTION_KEYS=keys, PORT=str(free_port()),
            HOST="127.0.0.1", ADMIN_USERNAME="root-admin", ADMIN_PASSWORD="a long admin password",
        )  # fmt: skip

    set_up = _run(["bootstrap"], env(OLD_KEY))
    assert set_up.returncode == 0, set_up.stderr
    asyncio.run(_add_secrets(fresh_database, SecretBox((OLD_KEY.encode(),))))

    # A replaced key: the server refuses to start, saying why and what to do; no traceback.
    for command in (["serve"], ["migrate"]):
        refused = _run(command, env(NEW_KEY))
        assert refused.returncode == 2, (command, refused.stdout, refused.stderr)
        assert "ENCRYPTION_KEYS cannot decrypt" in refused.stderr
        assert "ENCRYPTION_KEYS=<new>,<old>" in refused.stderr
        assert "Traceback" not in refused.stderr
    assert OLD_KEY not in refused.stderr
    assert NEW_KEY not in refused.stderr

    # Rotation with the new key first: every readable row is re-encrypted; the damaged one is named.
    before = asyncio.run(_stored_tokens(fresh_database))
    rotated = _run(["rotate-keys"], env(f"{NEW_KEY},{OLD_KEY}"))
    assert rotated.returncode == 1, rotated.stderr
    assert "Re-encrypted 5 stored secrets" in rotated.stdout
    assert "the key of channel #3" in rotated.stderr
    after = asyncio.run(_stored_tokens(fresh_database))
    new_only = SecretBox((NEW_KEY.encode(),))
    assert new_only.decrypt(after["first"]) == "sk-first-secret"
    assert new_only.decrypt(after["second"]) == "sk-second-secret"
    assert new_only.decrypt(after["totp"]) == TOTP_SECRET
    assert new_only.decrypt(after["smtp"]) == "smtp-secret"
    assert new_only.decrypt(after["mail"]) == WAITING_MAIL
    assert after["first"] != before["first"]
    assert after["damaged"] == before["damaged"]
    with pytest.raises(UndecryptableError):
        SecretBox((OLD_KEY.encode(),)).decrypt(after["first"])

    # The old key can go now; the old key alone is what is refused from here on.
    assert _run(["migrate"], env(NEW_KEY)).returncode == 0
    assert _run(["migrate"], env(OLD_KEY)).returncode == 2


def test_the_database_holds_only_ciphertext(gateway: LiveGateway) -> None:
    """Every stored value of every table, as the database returns it, and (SQLite) the raw file:
    no channel key, SMTP password or two-factor secret in the clear."""
    gateway.create_channel(base_url="http://127.0.0.1:9/v1")
    smtp_password = "smtp-SENTINEL-5d2c81"
    saved = gateway.http.put(
        "/api/admin/mail",
        json={
            "host": "127.0.0.1",
            "port": 9,
            "password": smtp_password,
            "from_address": "a@example.com",
        },
        headers=gateway.admin,
    )
    assert saved.status_code == 200, saved.text
    setup = gateway.http.post(
        "/api/auth/2fa/setup", json={"password": ADMIN_PASSWORD}, headers=gateway.admin
    )
    assert setup.status_code == 200, setup.text
    totp_secret = setup.json()["secret"]
    secrets = (UPSTREAM_KEY, smtp_password, totp_secret)

    async def dump() -> str:
        engine = gateway.ctx.engine
        parts: list[str] = []
        async with engine.connect() as conn:
            for table in Base.metadata.sorted_tables:
                rows = await conn.execute(table.select())
                parts.extend(repr(tuple(row)) for row in rows)
            if engine.dialect.name == "sqlite":
                await conn.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
        return "\n".join(parts)

    dumped = gateway.run(dump)
    assert "sk-…" in dumped, "the dump holds the channel row"
    assert "a@example.com" in dumped, "the dump holds the mail settings"
    for secret in secrets:
        assert secret not in dumped
    database = gateway.ctx.engine.url.database
    if gateway.ctx.engine.dialect.name == "sqlite" and database:
        for path in Path(database).parent.glob(Path(database).name + "*"):
            content = path.read_bytes()
            for secret in secrets:
                assert secret.encode() not in content, path
