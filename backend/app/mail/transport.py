"""Handing one message to the SMTP server (aiosmtplib), with errors a person can act on."""

from __future__ import annotations

from email.message import EmailMessage

import aiosmtplib

from app.mail.cache import SmtpConfig


class MailDeliveryError(Exception):
    """The server could not be reached or refused the message. `permanent`: trying again will
    not help (a refused address, refused credentials)."""

    def __init__(self, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.permanent = permanent


def _scrub(text: str, config: SmtpConfig) -> str:
    if config.password:
        text = text.replace(config.password, "***")
    return text[:500]


async def deliver(config: SmtpConfig, message: EmailMessage, timeout_seconds: float) -> None:
    """Send `message` (its To, From and Subject already set). Raises MailDeliveryError."""
    if not config.configured:
        raise MailDeliveryError("Outgoing mail is not set up", permanent=True)
    if config.password_undecryptable:
        raise MailDeliveryError(
            "The saved SMTP password cannot be decrypted; enter it again", permanent=True
        )
    try:
        await aiosmtplib.send(
            message,
            hostname=config.host,
            port=config.port,
            username=config.username or None,
            password=config.password if config.username else None,
            use_tls=config.security == "tls",
            start_tls=config.security == "starttls",
            timeout=timeout_seconds,
        )
    except aiosmtplib.SMTPAuthenticationError as exc:
        raise MailDeliveryError(
            f"The mail server refused the user name or password ({exc.code})", permanent=True
        ) from None
    except aiosmtplib.SMTPRecipientsRefused as exc:
        codes = ", ".join(str(r.code) for r in exc.recipients)
        raise MailDeliveryError(
            f"The mail server refused the recipient ({codes})", permanent=True
        ) from None
    except aiosmtplib.SMTPResponseException as exc:
        raise MailDeliveryError(
            _scrub(f"The mail server answered {exc.code}: {exc.message}", config),
            permanent=exc.code >= 500,
        ) from None
    except (
        aiosmtplib.SMTPConnectError,
        aiosmtplib.SMTPServerDisconnected,
        aiosmtplib.SMTPTimeoutError,
        OSError,
        TimeoutError,
    ) as exc:
        detail = _scrub(str(exc) or type(exc).__name__, config)
        raise MailDeliveryError(
            f"Could not reach the mail server {config.host}:{config.port}: {detail}",
            permanent=False,
        ) from None
    except aiosmtplib.SMTPException as exc:  # e.g. no STARTTLS or AUTH offered by the server
        detail = _scrub(str(exc) or type(exc).__name__, config)
        raise MailDeliveryError(f"Mail server error: {detail}", permanent=False) from None
