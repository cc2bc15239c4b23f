"""Sending mail in the background, from a table: a request writes the mail and goes on at once.

A mail is a row of `mail_outbox`, added in the same transaction as the one-time link it carries,
so a mail is never sent for a link that was rolled back and never lost once its link exists: it
waits in the database through a restart or a crash until it is sent or given up. The message is
stored encrypted (it holds a working link).

Each process runs one worker. It wakes when its own process commits a mail, and otherwise when the
next retry is due (at least every `POLL_SECONDS`, for mail written by other processes). A row is
claimed with a conditional update before it is sent, so two processes never send the same mail at
once; one that dies holding a row lets go of it after `lease`. A message the server could not take
(not reachable, a temporary 4xx refusal) is tried again later — `attempts` tries in all, waiting
`retry_seconds`, then six times longer after each failure — without holding up the others; a
permanent refusal (a 5xx, wrong credentials) is logged and dropped at once. At shutdown, mail that
is due gets a few seconds to go out; the rest goes out after the next start. Log lines mask the
address and never show the content.
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from email.message import EmailMessage

from sqlalchemy import ColumnElement, delete, event, func, or_, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.config import MailSettings
from app.core.security import SecretBox, UndecryptableError
from app.core.tasks import cancel_and_wait
from app.mail.cache import SmtpConfig
from app.mail.transport import MailDeliveryError, deliver
from app.models import MailOutboxEntry
from app.models.base import utcnow

logger = logging.getLogger(__name__)
RETRY_GROWTH = 6
# Mail written by another process is noticed within this long.
POLL_SECONDS = 10.0
# Rows claimed per pass.
BATCH = 20
# After a database error the worker tries again this much later.
DATABASE_PAUSE_SECONDS = 2.0
WAITING = select(func.count()).select_from(MailOutboxEntry)


def masked(address: str) -> str:
    """`a…@example.com`: enough to tell mails apart in a log, not to harvest addresses."""
    local, _, domain = address.partition("@")
    return f"{local[:1]}…@{domain}"


def _encode(message: EmailMessage) -> str:
    # Headers as RFC 2047 ASCII, as they go over the wire to any server (not raw UTF-8, which a
    # server without SMTPUTF8 cannot take).
    return message.as_string(policy=email.policy.default)


def _decode(text: str) -> EmailMessage:
    message = email.message_from_string(text, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


class Outbox:
    def __init__(
        self,
        settings: MailSettings,
        config: Callable[[], SmtpConfig],
        sessionmaker: async_sessionmaker[AsyncSession],
        box: SecretBox,
    ) -> None:
        self._settings = settings
        self._config = config
        self._sessionmaker = sessionmaker
        self._box = box
        # A process that dies mid-send lets go of the mail after this long.
        self._lease = timedelta(seconds=settings.timeout_seconds + 30)
        self._wake = asyncio.Event()
        # Set while the worker has found nothing due (cleared whenever it is woken).
        self._idle = asyncio.Event()
        self._worker: asyncio.Task[None] | None = None
        self.sent = 0
        self.failed = 0

    def start(self) -> None:
        self._worker = asyncio.get_running_loop().create_task(self._run(), name="mail-outbox")

    async def add(self, db: AsyncSession, message: EmailMessage, purpose: str) -> bool:
        """Write a mail in `db`'s transaction; it is sent once that commits. False (and a log
        line) when `queue_size` mails are already waiting."""
        waiting = await db.scalar(WAITING)
        if (waiting or 0) >= self._settings.queue_size:
            self.failed += 1
            logger.error(
                "Mail queue full (%d waiting): dropped a %s mail to %s",
                waiting,
                purpose,
                masked(str(message["To"])),
            )
            return False
        if not event.contains(db.sync_session, "after_commit", self._committed):
            event.listen(db.sync_session, "after_commit", self._committed)
        db.add(
            MailOutboxEntry(
                purpose=purpose,
                message_encrypted=self._box.encrypt(_encode(message)),
                attempts=0,
                next_attempt_at=utcnow(),
            )
        )
        return True

    def _committed(self, _session: object) -> None:
        self.wake()

    def wake(self) -> None:
        """Look for due mail now (call it after committing a mail)."""
        self._idle.clear()
        self._wake.set()

    async def waiting(self) -> int:
        async with self._sessionmaker() as db:
            return int(await db.scalar(WAITING) or 0)

    async def stop(self, grace_seconds: float = 5.0) -> None:
        """Give mail that is due `grace_seconds` to go out, then stop; the rest stays waiting."""
        if self._worker is not None and not self._worker.done():
            self.wake()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), grace_seconds)
        await cancel_and_wait(self._worker)
        self._worker = None
        try:
            left = await self.waiting()
        except SQLAlchemyError as exc:
            logger.warning("Could not count the mail still waiting: %s", exc)
            return
        if left:
            logger.warning(
                "Stopping with %d mail(s) not sent yet; they are sent after the next start", left
            )

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            try:
                pause = await self._send_due()
            except SQLAlchemyError as exc:
                logger.warning("The mail outbox could not read the database: %s", exc)
                pause = DATABASE_PAUSE_SECONDS
            except Exception:
                logger.exception("The mail outbox failed unexpectedly")
                pause = DATABASE_PAUSE_SECONDS
            else:
                if not self._wake.is_set():
                    self._idle.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), pause)

    async def _send_due(self) -> float:
        """Send every mail that is due; return how long to wait before the next one is."""
        while True:
            now = utcnow()
            async with self._sessionmaker() as db:
                due = (
                    await db.scalars(
                        select(MailOutboxEntry.id)
                        .where(MailOutboxEntry.next_attempt_at <= now, self._free(now))
                        .order_by(MailOutboxEntry.next_attempt_at, MailOutboxEntry.id)
                        .limit(BATCH)
                    )
                ).all()
                if not due:
                    upcoming = await db.scalar(
                        select(func.min(MailOutboxEntry.next_attempt_at)).where(self._free(now))
                    )
                    if upcoming is None:
                        return POLL_SECONDS
                    return min(POLL_SECONDS, max(0.0, (upcoming - now).total_seconds()))
            for entry_id in due:
                entry = await self._claim(entry_id)
                if entry is not None:
                    await self._send(entry)

    @staticmethod
    def _free(now: datetime) -> ColumnElement[bool]:
        """Rows no process holds (or whose holder's lease ran out)."""
        claimed = MailOutboxEntry.claimed_until
        return or_(claimed.is_(None), claimed < now)

    async def _claim(self, entry_id: int) -> MailOutboxEntry | None:
        """Hold the row for this process; None when another process holds it or sent it."""
        now = utcnow()
        async with self._sessionmaker() as db:
            result = await db.execute(
                update(MailOutboxEntry)
                .where(MailOutboxEntry.id == entry_id, self._free(now))
                .values(claimed_until=now + self._lease)
            )
            await db.commit()
            if result.rowcount != 1:  # type: ignore[attr-defined]
                return None
            return await db.get(MailOutboxEntry, entry_id)

    async def _finish(self, entry_id: int) -> None:
        async with self._sessionmaker() as db:
            await db.execute(delete(MailOutboxEntry).where(MailOutboxEntry.id == entry_id))
            await db.commit()

    async def _send(self, entry: MailOutboxEntry) -> None:
        try:
            message = _decode(self._box.decrypt(entry.message_encrypted))
        except UndecryptableError:
            self.failed += 1
            logger.error(
                "A waiting %s mail (#%d) cannot be decrypted with ENCRYPTION_KEYS; dropped",
                entry.purpose,
                entry.id,
            )
            await self._finish(entry.id)
            return
        to = masked(str(message["To"]))
        attempt = entry.attempts + 1
        try:
            await deliver(self._config(), message, self._settings.timeout_seconds)
        except MailDeliveryError as exc:
            await self._not_sent(entry, attempt, to, exc)
            return
        except Exception as exc:
            # Not the server's answer: still a failed attempt, so the mail cannot come back for ever.
            logger.exception("Sending a %s mail failed unexpectedly", entry.purpose)
            await self._not_sent(
                entry, attempt, to, MailDeliveryError(type(exc).__name__, permanent=False)
            )
            return
        await self._finish(entry.id)
        self.sent += 1
        logger.info("Sent a %s mail to %s", entry.purpose, to)

    async def _not_sent(
        self, entry: MailOutboxEntry, attempt: int, to: str, exc: MailDeliveryError
    ) -> None:
        """Give up on the mail (permanent refusal, or its last attempt), or try it again later."""
        if exc.permanent or attempt >= self._settings.attempts:
            self.failed += 1
            logger.error(
                "Could not send a %s mail to %s after %d attempt(s): %s",
                entry.purpose,
                to,
                attempt,
                exc,
            )
            await self._finish(entry.id)
            return
        pause = self._settings.retry_seconds * RETRY_GROWTH ** (attempt - 1)
        logger.warning(
            "A %s mail to %s was not sent (%s); trying again in %.0f s",
            entry.purpose,
            to,
            exc,
            pause,
        )
        async with self._sessionmaker() as db:
            await db.execute(
                update(MailOutboxEntry)
                .where(MailOutboxEntry.id == entry.id)
                .values(
                    attempts=attempt,
                    next_attempt_at=utcnow() + timedelta(seconds=pause),
                    claimed_until=None,
                )
            )
            await db.commit()
