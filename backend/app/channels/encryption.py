"""Secrets encrypted at rest — channel keys, two-factor secrets, the SMTP password, waiting mail:
the start-up check and key rotation.

`ENCRYPTION_KEYS` is a list: the first key encrypts, every key decrypts. An installation remembers a
small value encrypted with its keys (`app_meta.encryption_check`); at start-up it must open with the
configured keys, so a replaced or mistyped key is caught before any channel is used, with a message
saying what to do, instead of every channel switching itself off one by one. A channel row that
alone cannot be decrypted (restored from elsewhere, edited by hand) still disables only itself.

Rotation (`python -m app rotate-keys`): put the new key first (`ENCRYPTION_KEYS=<new>,<old>`), run
it — every stored key and the check value are re-encrypted with the new key — then drop the old key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from sqlalchemy import Table, delete, inspect, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.core import migrate
from app.core.app_secrets import ConfigError
from app.core.security import SecretBox, UndecryptableError
from app.models import AppMeta, Channel, MailConfig, MailOutboxEntry, User

CHECK_KEY = "encryption_check"
CHECK_PLAINTEXT = "ai-chat-gateway"
META = cast(Table, AppMeta.__table__)
CHANNELS = cast(Table, Channel.__table__)
# Every encrypted column: (table, its id column, the column, how a person names a row).
ENCRYPTED = (
    (CHANNELS, "id", "api_key_encrypted", "the key of channel #{}"),
    (
        cast(Table, User.__table__),
        "id",
        "totp_secret_encrypted",
        "the two-factor secret of user #{}",
    ),
    (cast(Table, MailConfig.__table__), "id", "password_encrypted", "the SMTP password"),
    (cast(Table, MailOutboxEntry.__table__), "id", "message_encrypted", "waiting mail #{}"),
)
HINT = (
    "Set ENCRYPTION_KEYS to the key this installation was set up with; to change keys, put the new "
    "one first and keep the old one after it (ENCRYPTION_KEYS=<new>,<old>), then run "
    "`python -m app rotate-keys`."
)


@dataclass(frozen=True)
class Rotation:
    rotated: int
    # What could not be decrypted with any configured key ("the key of channel #3").
    undecryptable: list[str]


async def _stored_check(conn: AsyncConnection) -> str | None:
    return await conn.scalar(select(META.c.value).where(META.c.key == CHECK_KEY))


async def _write_check(conn: AsyncConnection, box: SecretBox) -> None:
    await conn.execute(delete(META).where(META.c.key == CHECK_KEY))
    await conn.execute(META.insert().values(key=CHECK_KEY, value=box.encrypt(CHECK_PLAINTEXT)))


def _decrypted(box: SecretBox, token: str) -> str | None:
    try:
        return box.decrypt(token)
    except UndecryptableError:
        return None


async def _verify(conn: AsyncConnection, box: SecretBox) -> bool:
    """Raise ConfigError if the keys cannot be this installation's. True if a check value exists."""
    stored = await _stored_check(conn)
    if stored is not None:
        if _decrypted(box, stored) != CHECK_PLAINTEXT:
            raise ConfigError(
                "ENCRYPTION_KEYS cannot decrypt the data this installation encrypted: the key was "
                f"replaced or mistyped. {HINT}"
            )
        return True
    # An installation from before the check existed: its channel keys tell.
    tokens = list((await conn.scalars(select(CHANNELS.c.api_key_encrypted))).all())
    if tokens and all(_decrypted(box, token) is None for token in tokens):
        raise ConfigError(
            f"ENCRYPTION_KEYS cannot decrypt any of the {len(tokens)} stored channel keys: the key "
            f"was replaced or mistyped. {HINT}"
        )
    return False


async def verify_before_start(engine: AsyncEngine, box: SecretBox) -> None:
    """Before the server starts: refuse keys that cannot open what is stored (read-only; a
    database not created yet has nothing to check)."""
    async with engine.connect() as conn:
        tables = await conn.run_sync(lambda sync: set(inspect(sync).get_table_names()))
        if {"app_meta", "channels"} <= tables:
            await _verify(conn, box)


async def ensure(engine: AsyncEngine, box: SecretBox) -> None:
    """At start-up, after migrations: check the keys, and remember them if this is the first time."""
    async with migrate.exclusive(engine), engine.begin() as conn:
        if not await _verify(conn, box):
            await _write_check(conn, box)


async def rotate(engine: AsyncEngine, box: SecretBox) -> Rotation:
    """Re-encrypt every stored secret and the check value with the first configured key."""
    async with migrate.exclusive(engine), engine.begin() as conn:
        await _verify(conn, box)
        rotated, undecryptable = 0, []
        for table, id_name, column_name, label in ENCRYPTED:
            ident, column = table.c[id_name], table.c[column_name]
            rows = (await conn.execute(select(ident, column).where(column.is_not(None)))).all()
            for row_id, token in rows:
                try:
                    fresh = box.rotate(token)
                except UndecryptableError:
                    undecryptable.append(label.format(row_id))
                    continue
                await conn.execute(update(table).where(ident == row_id).values({column: fresh}))
                rotated += 1
        await _write_check(conn, box)
    return Rotation(rotated=rotated, undecryptable=undecryptable)
