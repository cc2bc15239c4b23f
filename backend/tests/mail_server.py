"""A real SMTP server on loopback (aiosmtpd) that keeps what it receives, for the mail tests."""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import threading
import time
import warnings
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from app.devtools.loop_thread import LoopThread

FROM_ADDRESS = "noreply@gateway.example"
PUBLIC_URL = "http://chat.example.test"
LINK = re.compile(r"https?://\S+token=[A-Za-z0-9_\-%]+")


class SmtpServer:
    """Collects every message; can ask for a user name and password, and refuse what comes next."""

    def __init__(
        self,
        credentials: tuple[str, str] | None = None,
        port: int | None = None,
        directory: Path | None = None,
    ) -> None:
        self.port = port or 0  # 0: the system picks a free one at start
        self.directory = (
            directory  # each message also written there as JSON (for the browser tests)
        )
        self.credentials = credentials
        self.messages: list[EmailMessage] = []
        self.deliveries = 0  # DATA commands seen, refused ones included
        self.refusals: list[str] = []  # answers to the next DATA commands, e.g. "451 later"
        self.delay = 0.0  # seconds to wait before answering DATA
        self._lock = threading.Lock()
        self._thread = LoopThread("smtp-server")

    def _session(self) -> SMTP:
        # Loopback only: AUTH without TLS is what these tests want (aiosmtpd warns about it).
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return SMTP(
                self,
                hostname="mail.gateway.test",
                enable_SMTPUTF8=True,
                authenticator=self._authenticate if self.credentials else None,
                auth_required=self.credentials is not None,
                auth_require_tls=False,
            )

    # aiosmtpd handler hooks
    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.delay:
            await asyncio.sleep(self.delay)
        with self._lock:
            self.deliveries += 1
            if self.refusals:
                return self.refusals.pop(0)
            content = envelope.content
            assert isinstance(content, bytes)
            message = message_from_bytes(content, policy=policy.default)
            assert isinstance(message, EmailMessage)
            self.messages.append(message)
            if self.directory is not None:
                record = {
                    "to": str(message["To"]),
                    "subject": str(message["Subject"]),
                    "text": text_of(message),
                    "html": html_of(message),
                }
                path = self.directory / f"{len(self.messages):04d}.json"
                path.write_text(json.dumps(record, ensure_ascii=False))
        return "250 OK"

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = (
            isinstance(data, LoginPassword)
            and (
                data.login.decode(),
                data.password.decode(),
            )
            == self.credentials
        )
        return AuthResult(success=ok, handled=False)

    def start(self) -> SmtpServer:
        self._thread.start()
        server = self._thread.listen(self._session, "127.0.0.1", self.port)
        self.port = int(server.sockets[0].getsockname()[1])
        return self

    def stop(self) -> None:
        """Stop listening, then close every session still connected (a sender mid-mail)."""
        self._thread.stop()

    def wait_for(self, count: int, timeout: float = 10) -> list[EmailMessage]:
        deadline = time.monotonic() + timeout
        while len(self.messages) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(self.messages) >= count, f"{len(self.messages)} of {count} mails arrived"
        return list(self.messages)

    async def await_for(self, count: int, within: float = 10) -> list[EmailMessage]:
        """`wait_for` without blocking the event loop (the app under test runs on it)."""
        deadline = time.monotonic() + within
        # Messages arrive on the server's own thread: poll.
        while len(self.messages) < count and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.02)
        assert len(self.messages) >= count, f"{len(self.messages)} of {count} mails arrived"
        return list(self.messages)

    def env_settings(self, **extra: Any) -> dict[str, Any]:
        """`mail` settings for a test app pointing at this server (fast retries)."""
        values: dict[str, Any] = {
            "host": "127.0.0.1",
            "port": self.port,
            "security": "none",
            "from_address": FROM_ADDRESS,
            "retry_seconds": 0.05,
            "timeout_seconds": 5,
        }
        if self.credentials:
            values["username"], values["password"] = self.credentials
        return values | extra


def text_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())  # type: ignore[attr-defined]


def html_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("html",))
    assert part is not None
    return str(part.get_content())  # type: ignore[attr-defined]


def link_in(message: EmailMessage) -> str:
    found = LINK.findall(text_of(message))
    assert len(found) == 1, found
    return str(found[0])


def token_in(message: EmailMessage) -> str:
    return parse_qs(urlsplit(link_in(message)).query)["token"][0]


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    server = SmtpServer().start()
    yield server
    server.stop()


def main() -> None:
    """`python -m tests.mail_server --port N --dir D`: the browser tests' mail server."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dir", type=Path, required=True)
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    server = SmtpServer(port=args.port, directory=args.dir).start()
    try:
        threading.Event().wait()
    finally:
        server.stop()


if __name__ == "__main__":
    main()
