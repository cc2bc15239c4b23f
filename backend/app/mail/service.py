"""Admin side of outgoing mail: read and save the SMTP settings, send a test mail."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import MailSettings
from app.core.db import get_or_create
from app.core.errors import UnprocessableError
from app.core.events import announce
from app.core.security import SecretBox
from app.mail import templates
from app.mail.cache import CONFIG_ROW_ID, SmtpConfig, from_row
from app.mail.schemas import MailConfigRead, MailConfigUpdate, TestMailResult
from app.mail.transport import MailDeliveryError, deliver
from app.models import MailConfig, User


def describe(config: SmtpConfig, row: MailConfig | None) -> MailConfigRead:
    return MailConfigRead(
        host=config.host,
        port=config.port,
        security=config.security,
        username=config.username,
        password_set=bool(row.password_encrypted) if row else config.password is not None,
        password_undecryptable=config.password_undecryptable,
        from_address=config.from_address,
        from_name=config.from_name,
        source=config.source,
        configured=config.configured,
        updated_at=row.updated_at if row else None,
    )


async def save(
    db: AsyncSession,
    box: SecretBox,
    current: SmtpConfig,
    body: MailConfigUpdate,
    admin: User,
) -> tuple[SmtpConfig, MailConfig]:
    """Store the settings (the first save copies an environment password if none is given)."""
    # The first save (two admins may make it at once) copies an environment password.
    row, created = await get_or_create(
        db, MailConfig, CONFIG_ROW_ID, lambda: MailConfig(id=CONFIG_ROW_ID)
    )
    if created and current.password is not None:
        row.password_encrypted = box.encrypt(current.password)
    row.host = body.host.strip()
    row.port = body.port
    row.security = body.security
    row.username = body.username.strip()
    row.from_address = body.from_address
    row.from_name = body.from_name.strip()
    row.updated_by = admin.id
    if "password" in body.model_fields_set:
        secret = body.password.get_secret_value() if body.password is not None else ""
        row.password_encrypted = box.encrypt(secret) if secret else None
    await db.flush()
    await db.refresh(row)
    announce(db, "mail")
    return from_row(row, box), row


async def send_test(
    config: SmtpConfig, settings: MailSettings, *, site: str, to: str, language: templates.Language
) -> TestMailResult:
    """Send one mail now (one attempt) and say how it went: the admin is waiting to know."""
    if not config.configured:
        raise UnprocessableError(
            "Mail is not set up: save an SMTP host and a sender address first",
            code="mail_not_configured",
        )
    message = templates.compose(
        "test",
        language,
        site=site,
        sender=templates.Sender(config.from_address, config.from_name),
        to=to,
    )
    try:
        await deliver(config, message, settings.timeout_seconds)
    except MailDeliveryError as exc:
        return TestMailResult(ok=False, error=str(exc))
    return TestMailResult(ok=True)
