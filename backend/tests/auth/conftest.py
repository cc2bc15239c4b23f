"""An app that sends mail to a real SMTP server on loopback, and accounts on it."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import update

from app.models import AccountToken
from app.models.base import utcnow
from tests.conftest import Account, Harness, HarnessFactory, register
from tests.mail_server import PUBLIC_URL, SmtpServer

PASSWORD = "correct horse battery"


async def mail_app(
    harness_factory: HarnessFactory,
    smtp_server: SmtpServer,
    mail: dict[str, Any] | None = None,
    **runtime: Any,
) -> Harness:
    """An app sending mail to `smtp_server` (`mail`: other mail settings), links to PUBLIC_URL,
    with these runtime settings."""
    return await harness_factory(
        mail=smtp_server.env_settings(**(mail or {})),
        runtime={"public_url": PUBLIC_URL, **runtime},
    )


@pytest.fixture
async def mail_harness(harness_factory: HarnessFactory, smtp_server: SmtpServer) -> Harness:
    return await mail_app(harness_factory, smtp_server, email_verification=True)


async def sign_up(harness: Harness, username: str, email: str | None = None) -> Account:
    return await register(harness, username, PASSWORD, **({"email": email} if email else {}))


async def expire_links(harness: Harness) -> None:
    """Move every link's expiry into the past (as if its time had run out)."""
    async with harness.app.state.ctx.sessionmaker() as db:
        await db.execute(update(AccountToken).values(expires_at=utcnow()))
        await db.commit()
