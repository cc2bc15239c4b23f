"""Sending mail in the background: requests hand a message over and go on at once.

One worker hands messages to the SMTP server in turn. A message the server could not take (not
reachable, a temporary 4xx refusal) is tried again later — `attempts` tries in all, waiting
`retry_seconds`, then six times longer after each failure — without holding up the others; a
permanent refusal (a 5xx, wrong credentials) is logged at once. Messages still waiting at shutdown
get a few seconds to go out; what is left is logged (addresses masked, never the content, which
may hold a one-time link).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage

from app.core.config import MailSettings
from app.core.tasks import TaskSet, cancel_and_wait
from app.mail.config import SmtpConfig
from app.mail.transport import MailDeliveryError, deliver

logger = logging.getLogger(__name__)
RETRY_GROWTH = 6


def masked(address: str) -> str:
    """`a…@example.com`: enough to tell mails apart in a log, not to harvest addresses."""
    local, _, domain = address.partition("@")
    return f"{local[:1]}…@{domain}"


@dataclass
class _Letter:
    message: EmailMessage
    purpose: str
    attempt: int = 1


class Outbox:
    def __init__(self, settings: MailSettings, config: Callable[[], SmtpConfig]) -> None:
        self._settings = settings
        self._config = config
        self._queue: asyncio.Queue[_Letter] = asyncio.Queue(maxsize=settings.queue_size)
        self._retries = TaskSet()
        self._worker: asyncio.Task[None] | None = None
        self._retrying = 0
        self.sent = 0
        self.failed = 0

    def start(self) -> None:
        self._worker = asyncio.get_running_loop().create_task(self._run(), name="mail-outbox")

    def submit(self, message: EmailMessage, purpose: str) -> bool:
        """Queue a message; False (and a log line) when the queue is full."""
        try:
            self._queue.put_nowait(_Letter(message, purpose))
        except asyncio.QueueFull:
            self.failed += 1
            logger.error(
                "Mail queue full: dropped a %s mail to %s", purpose, masked(str(message["To"]))
            )
            return False
        return True

    @property
    def pending(self) -> int:
        return self._queue.qsize()

    async def stop(self, grace_seconds: float = 5.0) -> None:
        """Give waiting messages `grace_seconds` to go out, then stop."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._queue.join(), grace_seconds)
        await cancel_and_wait(self._worker)
        self._worker = None
        left = self._queue.qsize() + self._retrying
        if left:
            logger.warning("Shutting down with %d mails not sent", left)

    async def _run(self) -> None:
        while True:
            letter = await self._queue.get()
            try:
                await self._send(letter)
            except Exception:
                logger.exception("Sending a %s mail failed unexpectedly", letter.purpose)
            finally:
                self._queue.task_done()

    async def _send(self, letter: _Letter) -> None:
        to = masked(str(letter.message["To"]))
        try:
            await deliver(self._config(), letter.message, self._settings.timeout_seconds)
        except MailDeliveryError as exc:
            if exc.permanent or letter.attempt >= self._settings.attempts:
                self.failed += 1
                logger.error(
                    "Could not send a %s mail to %s after %d attempt(s): %s",
                    letter.purpose,
                    to,
                    letter.attempt,
                    exc,
                )
                return
            pause = self._settings.retry_seconds * RETRY_GROWTH ** (letter.attempt - 1)
            logger.warning(
                "A %s mail to %s was not sent (%s); trying again in %.0f s",
                letter.purpose,
                to,
                exc,
                pause,
            )
            letter.attempt += 1
            self._retrying += 1
            self._retries.spawn(self._retry_later(letter, pause))
            return
        self.sent += 1
        logger.info("Sent a %s mail to %s", letter.purpose, to)

    async def _retry_later(self, letter: _Letter, pause: float) -> None:
        try:
            await asyncio.sleep(pause)
        finally:
            self._retrying -= 1
        try:
            self._queue.put_nowait(letter)
        except asyncio.QueueFull:
            self.failed += 1
            logger.error("Mail queue full: dropped a %s mail on retry", letter.purpose)
