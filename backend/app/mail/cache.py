"""Which SMTP server to use: what an admin saved (`mail_config`), else the `SMTP_*` environment.

Held in memory by `MailConfigCache` and reloaded when an admin saves (on every process, through
the change bus). The password is decrypted only here, into memory; no API returns it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.config import MailSettings
from app.core.security import SecretBox, UndecryptableError
from app.models import MailConfig

logger = logging.getLogger(__name__)
CONFIG_ROW_ID = 1
Security = Literal["starttls", "tls", "none"]


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    security: Security
    username: str
    password: str | None
    from_address: str
    from_name: str
    source: Literal["admin", "environment"]
    # The stored password could not be decrypted with ENCRYPTION_KEYS (enter it again).
    password_undecryptable: bool = False

    @property
    def configured(self) -> bool:
        return bool(self.host and self.from_address)


def from_environment(settings: MailSettings) -> SmtpConfig:
    return SmtpConfig(
        host=settings.host,
        port=settings.port,
        security=settings.security,
        username=settings.username,
        password=settings.password.get_secret_value() if settings.password else None,
        from_address=settings.from_address,
        from_name=settings.from_name,
        source="environment",
    )


def from_row(row: MailConfig, box: SecretBox) -> SmtpConfig:
    password, undecryptable = None, False
    if row.password_encrypted:
        try:
            password = box.decrypt(row.password_encrypted)
        except UndecryptableError:
            undecryptable = True
            logger.error(
                "The saved SMTP password cannot be decrypted with ENCRYPTION_KEYS; "
                "enter it again under Admin → Mail"
            )
    security: Security = row.security if row.security in ("starttls", "tls", "none") else "starttls"  # type: ignore[assignment]
    return SmtpConfig(
        host=row.host,
        port=row.port,
        security=security,
        username=row.username,
        password=password,
        from_address=row.from_address,
        from_name=row.from_name,
        source="admin",
        password_undecryptable=undecryptable,
    )


async def load_row(db: AsyncSession) -> MailConfig | None:
    return await db.scalar(select(MailConfig).where(MailConfig.id == CONFIG_ROW_ID))


class MailConfigCache:
    def __init__(self, settings: MailSettings, box: SecretBox) -> None:
        self._settings = settings
        self._box = box
        self.current = from_environment(settings)

    async def reload(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        async with sessionmaker() as db:
            row = await load_row(db)
        self.current = (
            from_row(row, self._box) if row is not None else from_environment(self._settings)
        )
