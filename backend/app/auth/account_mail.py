"""Mails about an account: the link to confirm an address and the link to reset a password.

Both need outgoing mail and the site's public address (`public_url`; links are never built from
the request's Host header, which a caller controls). Asking for a mail is limited per address
and per client address per hour, counted the same whether or not an account has the address.
A password-reset request is answered before anything is looked up: the lookup, the link and the
mail happen in the background, so neither the answer nor its timing tells whether the address
belongs to an account.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from email.message import EmailMessage

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.auth import links
from app.core.config import AuthSettings
from app.core.errors import RateLimitedError, ServiceUnavailableError
from app.mail import templates
from app.mail.cache import SmtpConfig
from app.mail.outbox import Outbox
from app.models import TokenPurpose, User, UserStatus
from app.ratelimit.limiter import RateLimiter
from app.ratelimit.responses import rate_limited
from app.runtime_settings.cache import RuntimeSettingsCache

logger = logging.getLogger(__name__)
HOUR = 3600


class AccountMail:
    def __init__(
        self,
        *,
        outbox: Outbox,
        smtp: Callable[[], SmtpConfig],
        runtime: RuntimeSettingsCache,
        settings: AuthSettings,
        limiter: RateLimiter,
    ) -> None:
        self._outbox = outbox
        self._smtp = smtp
        self._runtime = runtime
        self._verify_minutes = settings.verify_email_link_hours * 60
        self._reset_minutes = settings.password_reset_link_minutes
        self._limiter = limiter

    @property
    def available(self) -> bool:
        """Mail with links can be sent: SMTP is set up and the site knows its address."""
        return self._smtp().configured and bool(self._runtime.current.public_url)

    def ensure_available(self) -> None:
        if not self.available:
            raise ServiceUnavailableError(
                "E-mail is not set up on this site. Ask an administrator.",
                code="mail_unavailable",
            )

    async def check_rate(self, email: str, client_ip: str) -> None:
        """429 when this address or this client asked for too many mails in the last hour."""
        values = self._runtime.current
        for key, limit in (
            (f"mail:ip:{client_ip}", values.mail_max_per_ip_per_hour),
            (f"mail:addr:{email.lower()}", values.mail_max_per_address_per_hour),
        ):
            rejection = await self._limiter.hit(key, limit, HOUR)
            if rejection is not None:
                raise rate_limited(
                    "Too many mails were asked for. Try again later.",
                    "mail_throttled",
                    limit,
                    rejection.reset_after,
                )

    async def verification(
        self, db: AsyncSession, user: User, language: templates.Language
    ) -> EmailMessage:
        """A confirmation link for the user's current address, as a mail to send once the
        transaction has committed."""
        assert user.email is not None
        token = await links.issue(
            db,
            user,
            TokenPurpose.VERIFY_EMAIL,
            user.email,
            timedelta(minutes=self._verify_minutes),
        )
        return self._compose("verify_email", user, user.email, token, language)

    async def offer_verification(
        self,
        db: AsyncSession,
        user: User,
        language: templates.Language,
        client_ip: str,
    ) -> EmailMessage | None:
        """After registering or changing the address: a confirmation mail, when the site asks
        for one and can send it (None otherwise, also when too many were asked for: the user
        can ask again from their profile)."""
        if not (self._runtime.current.email_verification and self.available):
            return None
        if user.email is None or user.email_verified:
            return None
        try:
            await self.check_rate(user.email, client_ip)
        except RateLimitedError:
            return None
        return await self.verification(db, user, language)

    async def send(self, db: AsyncSession, message: EmailMessage, purpose: str) -> None:
        """Queue the mail in `db`'s transaction: it goes out once that commits."""
        await self._outbox.add(db, message, purpose)

    async def send_reset_link(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        email: str,
        language: templates.Language,
    ) -> None:
        """In the background: if an active account has this address, mail it a reset link."""
        try:
            async with sessionmaker() as db:
                user = await db.scalar(
                    select(User).where(User.email == email, User.status == UserStatus.ACTIVE)
                )
                if user is None:
                    return
                token = await links.issue(
                    db,
                    user,
                    TokenPurpose.RESET_PASSWORD,
                    email,
                    timedelta(minutes=self._reset_minutes),
                )
                await self.send(
                    db,
                    self._compose("reset_password", user, email, token, language),
                    "reset_password",
                )
                await db.commit()
        except Exception:
            logger.exception("Preparing a password-reset mail failed")

    def _compose(
        self,
        kind: templates.Kind,
        user: User,
        to: str,
        token: str,
        language: templates.Language,
    ) -> EmailMessage:
        smtp = self._smtp()
        values = self._runtime.current
        purpose = TokenPurpose(kind)
        return templates.compose(
            kind,
            language,
            site=values.site_name,
            sender=templates.Sender(smtp.from_address, smtp.from_name),
            to=to,
            name=user.display_name or user.username,
            link=links.url(values.public_url, purpose, token),
            valid_minutes=self._verify_minutes
            if purpose is TokenPurpose.VERIFY_EMAIL
            else self._reset_minutes,
        )
