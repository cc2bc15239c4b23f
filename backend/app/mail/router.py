"""Outgoing mail settings for admins (`/api/admin/mail`)."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from app.access.dependencies import AdminUser, require_admin
from app.core.deps import SessionDep
from app.mail import service
from app.mail.cache import load_row
from app.mail.context import MailContextDep
from app.mail.dependencies import MailLanguage
from app.mail.schemas import MailConfigRead, MailConfigUpdate, TestMailRequest, TestMailResult

router = APIRouter(
    prefix="/api/admin/mail", tags=["admin-mail"], dependencies=[Depends(require_admin)]
)


@router.get("")
async def get_mail_config(ctx: MailContextDep, db: SessionDep) -> MailConfigRead:
    return service.describe(ctx.mail_config.current, await load_row(db))


@router.put("")
async def save_mail_config(
    body: MailConfigUpdate, admin: AdminUser, ctx: MailContextDep, db: SessionDep
) -> MailConfigRead:
    """Save the SMTP settings. `password` omitted keeps the stored one; "" or null removes it."""
    config, row = await service.save(db, ctx.secret_box, ctx.mail_config.current, body, admin)
    return service.describe(config, row)


@router.post("/test")
async def send_test_mail(
    body: TestMailRequest, ctx: MailContextDep, language: MailLanguage
) -> TestMailResult:
    """Send a test mail with the saved settings now, and report whether the server took it."""
    return await service.send_test(
        ctx.mail_config.current,
        ctx.settings.mail,
        site=ctx.runtime.current.site_name,
        to=body.to,
        language=language,
    )
