"""Mails when spending nears a limit: to the user (or the key's owner) and to every admin.

Checked every `interval` seconds from the daily statistics (`billing.alerts`): a budget 80 % and
100 % spent, a prepaid balance 80 % used and empty — each told once per period. In Chinese when the
site's name is, else in English (accounts keep no language of their own).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.billing.alerts import Alert, due
from app.billing.money import nano_text
from app.mail import templates
from app.mail.cache import SmtpConfig
from app.mail.outbox import Outbox
from app.models import User, UserRole, UserStatus
from app.models.base import utcnow
from app.runtime_settings.cache import RuntimeSettingsCache

logger = logging.getLogger(__name__)
CJK = re.compile("[\u3400-\u9fff]")

_WHAT = {
    "en": {
        "budget": "your account's budget",
        "key_budget": "the budget of your API key “{key}”",
        "balance": "your prepaid balance",
    },
    "zh-CN": {
        "budget": "您账户的预算",
        "key_budget": "您的 API 密钥“{key}”的预算",
        "balance": "您的预付余额",
    },
}


def _texts(alert: Alert, currency: str, language: templates.Language) -> tuple[str, str]:
    what = _WHAT[language][alert.kind].format(key=alert.key_name or "")
    spent, limit = nano_text(alert.spent), nano_text(alert.limit)
    if language == "zh-CN":
        subject = f"{what}已用完" if alert.level >= 100 else f"{what}已用 {alert.level}%"
        body = f"{what}已使用 {spent} / {limit} {currency}，统计周期为 {alert.period}。"
        body += (
            "在补充之前，新的模型调用会被拒绝。"
            if alert.level >= 100
            else "用完后新的调用会被拒绝。"
        )
        return subject, body
    subject = f"{what} is used up" if alert.level >= 100 else f"{what} is {alert.level}% used"
    body = f"{spent} of {limit} {currency} of {what} is spent ({alert.period}). "
    body += (
        "New model calls are refused until it is raised or refilled."
        if alert.level >= 100
        else "Once it is used up, new model calls are refused."
    )
    return subject[0].upper() + subject[1:], body


class SpendAlertMail:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        outbox: Outbox,
        smtp: Callable[[], SmtpConfig],
        runtime: RuntimeSettingsCache,
        tz: ZoneInfo,
    ) -> None:
        self._sessions = sessionmaker
        self._outbox = outbox
        self._smtp = smtp
        self._runtime = runtime
        self._tz = tz

    async def run_once(self) -> int:
        """Queue the mails of every alert reached since the last look; how many alerts."""
        smtp = self._smtp()
        if not smtp.configured:
            return 0
        values = self._runtime.current
        language: templates.Language = "zh-CN" if CJK.search(values.site_name) else "en"
        async with self._sessions() as db:
            try:
                alerts = await due(db, self._tz, utcnow())
                if not alerts:
                    return 0
                admins = (
                    (
                        await db.execute(
                            select(User).where(
                                User.role == UserRole.ADMIN,
                                User.status == UserStatus.ACTIVE,
                                User.email.is_not(None),
                            )
                        )
                    )
                    .scalars()
                    .all()
                )
                for alert in alerts:
                    owner = await db.get(User, alert.user_id)
                    recipients = {admin.email: admin for admin in admins}
                    if owner is not None and owner.email:
                        recipients[owner.email] = owner
                    subject, body = _texts(alert, values.currency, language)
                    for address, person in recipients.items():
                        assert address is not None
                        message = templates.compose(
                            "spend_alert",
                            language,
                            site=values.site_name,
                            sender=templates.Sender(smtp.from_address, smtp.from_name),
                            to=address,
                            name=person.display_name or person.username,
                            detail=body,
                            detail_subject=subject,
                        )
                        await self._outbox.add(db, message, "spend_alert")
                await db.commit()
            except IntegrityError:  # another process is telling the same alerts
                await db.rollback()
                return 0
        self._outbox.wake()
        return len(alerts)
