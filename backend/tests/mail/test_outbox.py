"""Mail goes out in the background, is tried again after a temporary refusal, waits in the
database through a restart, is sent once even with two processes, and never blocks a request or
leaks its link into the log or the database."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from email.message import EmailMessage

import pytest
from sqlalchemy import select

from app.mail import outbox as outbox_module
from app.models import MailOutboxEntry
from tests.auth.conftest import mail_app, sign_up
from tests.conftest import Harness, HarnessFactory
from tests.live import LogCapture
from tests.mail_server import FROM_ADDRESS, PUBLIC_URL, SmtpServer, link_in, text_of, token_in
from tests.processes import free_port


async def _ask_reset(harness: Harness, email: str) -> None:
    answer = await harness.client.post("/api/auth/password/reset", json={"email": email})
    assert answer.status_code == 202, answer.text


async def _until(probe: Callable[[], object], expected: object, within: float = 10) -> None:
    """Poll `probe` (plain or async) until it gives `expected` (counters, not events)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        value = probe()
        if inspect.isawaitable(value):
            value = await value
        if value == expected:
            return
        assert loop.time() < deadline, f"{value!r} != {expected!r}"
        await asyncio.sleep(0.02)


async def test_a_temporary_refusal_is_tried_again(
    harness_factory: HarnessFactory, smtp_server: SmtpServer
) -> None:
    harness = await mail_app(harness_factory, smtp_server)
    await sign_up(harness, "alice", "alice@example.com")
    smtp_server.refusals = ["451 4.3.0 Try again later", "421 4.7.0 Busy"]
    await _ask_reset(harness, "alice@example.com")
    message = (await smtp_server.await_for(1))[0]
    assert smtp_server.deliveries == 3
    assert message["To"] == "alice@example.com"
    # The link that finally arrived works.
    confirmed = await harness.client.post(
        "/api/auth/password/reset/confirm",
        json={"token": token_in(message), "new_password": "a brand new passphrase"},
    )
    assert confirmed.status_code == 204


async def test_a_permanent_refusal_is_not_retried_and_a_request_never_waits(
    harness_factory: HarnessFactory, smtp_server: SmtpServer
) -> None:
    harness = await mail_app(harness_factory, smtp_server)
    outbox = harness.app.state.ctx.outbox
    await sign_up(harness, "bob", "bob@example.com")

    smtp_server.refusals = ["550 5.1.1 No such mailbox"]
    await _ask_reset(harness, "bob@example.com")
    await _until(lambda: outbox.failed, 1)
    await asyncio.sleep(0.3)  # several retry intervals: nothing more is tried
    assert smtp_server.deliveries == 1
    assert smtp_server.messages == []

    # A slow mail server: the request is answered before the mail is handed over.
    smtp_server.delay = 1.0
    await _ask_reset(harness, "bob@example.com")
    assert smtp_server.messages == []
    await smtp_server.await_for(1)


async def test_giving_up_is_logged_without_the_link_or_the_whole_address(
    harness_factory: HarnessFactory, smtp_server: SmtpServer, log_capture: LogCapture
) -> None:
    harness = await mail_app(harness_factory, smtp_server, {"attempts": 3})
    outbox = harness.app.state.ctx.outbox
    await sign_up(harness, "carol", "carol@example.com")
    smtp_server.refusals = ["451 later"] * 3
    await _ask_reset(harness, "carol@example.com")
    await _until(lambda: outbox.failed, 1)
    assert smtp_server.deliveries == 3
    gave_up = [line for line in log_capture.lines if "after 3 attempt(s)" in line]
    assert len(gave_up) == 1
    assert "c…@example.com" in gave_up[0]
    app_lines = [line for line in log_capture.lines if line.split(" ")[1].startswith("app.")]
    assert not any("carol@example.com" in line for line in app_lines)
    # The link is in no line of the app's process, its libraries' debug lines included (only
    # the test's own SMTP server, logger "mail.log", prints what it receives).
    ours = [line for line in log_capture.lines if line.split(" ")[1] != "mail.log"]
    assert not any("token=" in line for line in ours)


async def test_waiting_mail_is_sent_at_shutdown(
    harness_factory: HarnessFactory, smtp_server: SmtpServer
) -> None:
    harness = await mail_app(harness_factory, smtp_server)
    await sign_up(harness, "dave", "dave@example.com")
    smtp_server.delay = 0.3
    for _ in range(3):
        await _ask_reset(harness, "dave@example.com")
    ctx = harness.app.state.ctx
    await ctx.jobs.drain()
    assert len(smtp_server.messages) < 3
    await ctx.outbox.stop(grace_seconds=10)
    assert len(smtp_server.messages) == 3


async def _waiting(harness: Harness) -> list[MailOutboxEntry]:
    async with harness.app.state.ctx.sessionmaker() as db:
        return list((await db.scalars(select(MailOutboxEntry))).all())


async def test_mail_waiting_at_a_restart_is_sent_after_it(
    harness_factory: HarnessFactory, smtp_server: SmtpServer, log_capture: LogCapture
) -> None:
    # The first process cannot reach its mail server, and stops before the retry is due.
    down = {"host": "127.0.0.1", "port": free_port(), "retry_seconds": 0.5}
    first = await mail_app(harness_factory, smtp_server, down)
    await sign_up(first, "erin", "erin@example.com")
    await _ask_reset(first, "erin@example.com")
    await first.app.state.ctx.jobs.drain()
    await _until(lambda: _attempts(first), 1)
    await first.app.state.ctx.outbox.stop()
    assert any("1 mail(s) not sent yet" in line for line in log_capture.lines)

    # What waits is ciphertext: neither the link nor the address can be read from the row.
    (row,) = await _waiting(first)
    assert row.attempts == 1
    assert "token" not in row.message_encrypted
    assert "erin" not in row.message_encrypted

    # The next process, whose mail server answers, sends it when the retry is due.
    second = await mail_app(harness_factory, smtp_server)
    (message,) = await smtp_server.await_for(1)
    assert message["To"] == "erin@example.com"
    assert PUBLIC_URL in link_in(message)
    await _until(lambda: _count(second), 0)
    confirmed = await second.client.post(
        "/api/auth/password/reset/confirm",
        json={"token": token_in(message), "new_password": "a brand new passphrase"},
    )
    assert confirmed.status_code == 204
    await second.login("erin", "a brand new passphrase")
    assert smtp_server.deliveries == 1


async def test_two_processes_send_each_mail_once(
    harness_factory: HarnessFactory, smtp_server: SmtpServer
) -> None:
    first = await mail_app(harness_factory, smtp_server)
    second = await mail_app(harness_factory, smtp_server)
    smtp_server.delay = 0.05  # both workers see the rows while the first ones are being sent
    addresses = [f"user{n}@example.com" for n in range(8)]
    async with first.app.state.ctx.sessionmaker() as db:
        for address in addresses:
            message = EmailMessage()
            message["From"], message["To"], message["Subject"] = FROM_ADDRESS, address, "Hello"
            message.set_content(f"For {address}")
            assert await first.app.state.ctx.outbox.add(db, message, "test")
        await db.commit()  # wakes the first process's worker
    second.app.state.ctx.outbox.wake()
    await smtp_server.await_for(len(addresses))
    await _until(lambda: _count(first), 0)
    await asyncio.sleep(0.3)  # anything sent twice would have arrived by now
    assert sorted(str(m["To"]) for m in smtp_server.messages) == addresses
    outboxes = (first.app.state.ctx.outbox, second.app.state.ctx.outbox)
    assert sum(outbox.sent for outbox in outboxes) == len(addresses)
    assert all(outbox.sent > 0 for outbox in outboxes), "both processes took part"


async def test_an_unexpected_failure_while_sending_counts_as_an_attempt(
    harness_factory: HarnessFactory,
    smtp_server: SmtpServer,
    log_capture: LogCapture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A fault that is not the server's answer (a bug, a library error) is retried like a
    temporary refusal and given up after the last attempt, instead of keeping the mail claimed."""
    harness = await mail_app(harness_factory, smtp_server, {"attempts": 2})
    outbox = harness.app.state.ctx.outbox
    await sign_up(harness, "dan", "dan@example.com")
    calls: list[str] = []

    async def broken(*_args: object) -> None:
        calls.append("deliver")
        raise RuntimeError("not an SMTP answer")

    monkeypatch.setattr(outbox_module, "deliver", broken)
    await _ask_reset(harness, "dan@example.com")
    await _until(lambda: outbox.failed, 1)
    await _until(lambda: _count(harness), 0)
    assert calls == ["deliver", "deliver"]
    assert any("failed unexpectedly" in line for line in log_capture.lines)
    assert any("after 2 attempt(s): RuntimeError" in line for line in log_capture.lines)
    assert smtp_server.messages == []


async def _attempts(harness: Harness) -> int:
    return sum(row.attempts for row in await _waiting(harness))


async def _count(harness: Harness) -> int:
    return len(await _waiting(harness))


async def test_a_chinese_mail_goes_through_the_outbox_intact(
    harness_factory: HarnessFactory, smtp_server: SmtpServer
) -> None:
    """Non-ASCII headers and text survive being stored and sent to a server without SMTPUTF8."""
    harness = await mail_app(harness_factory, smtp_server, site_name="团队网关")
    await sign_up(harness, "wang", "wang@example.com")
    answer = await harness.client.post(
        "/api/auth/password/reset",
        json={"email": "wang@example.com"},
        headers={"Accept-Language": "zh-CN"},
    )
    assert answer.status_code == 202, answer.text
    (message,) = await smtp_server.await_for(1)
    assert "团队网关" in str(message["Subject"])
    assert "团队网关" in text_of(message)
    assert token_in(message)
    assert harness.app.state.ctx.outbox.failed == 0
