"""Resetting a forgotten password through a mailed link."""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx
from sqlalchemy import select

from app.models import AccountToken
from tests.auth.conftest import PASSWORD, expire_links, mail_app, sign_up
from tests.conftest import Harness, HarnessFactory
from tests.mail_server import SmtpServer, link_in, text_of, token_in

NEW_PASSWORD = "a brand new passphrase"


async def _ask(harness: Harness, email: str) -> httpx.Response:
    return await harness.client.post("/api/auth/password/reset", json={"email": email})


async def _confirm(harness: Harness, token: str, password: str = NEW_PASSWORD) -> httpx.Response:
    return await harness.client.post(
        "/api/auth/password/reset/confirm", json={"token": token, "new_password": password}
    )


async def _settle(harness: Harness) -> None:
    """Wait for the background work of the requests made so far."""
    await harness.app.state.ctx.jobs.drain()


async def test_the_answer_does_not_tell_whether_an_address_has_an_account(
    mail_harness: Harness, smtp_server: SmtpServer
) -> None:
    await sign_up(mail_harness, "alice", "alice@example.com")
    await smtp_server.await_for(1)  # the confirmation mail
    smtp_server.messages.clear()

    known = await _ask(mail_harness, "Alice@Example.com")
    unknown = await _ask(mail_harness, "nobody@example.com")
    assert known.status_code == unknown.status_code == 202
    assert known.json() == unknown.json()
    assert known.headers.keys() - {"x-request-id"} == unknown.headers.keys() - {"x-request-id"}

    await _settle(mail_harness)
    messages = await smtp_server.await_for(1)
    await mail_harness.app.state.ctx.outbox.stop(grace_seconds=5)
    assert [m["To"] for m in smtp_server.messages] == ["alice@example.com"]
    assert urlsplit(link_in(messages[0])).path == "/reset-password"
    assert "1 hour" in text_of(messages[0])


async def test_a_link_sets_a_new_password_once_and_signs_out_every_session(
    mail_harness: Harness, smtp_server: SmtpServer
) -> None:
    account = await sign_up(mail_harness, "bob", "bob@example.com")
    other_device = await mail_harness.login("bob", PASSWORD)
    await _ask(mail_harness, "bob@example.com")
    await _settle(mail_harness)
    token = token_in((await smtp_server.await_for(2))[1])

    weak = await _confirm(mail_harness, token, "short")
    assert weak.status_code == 422  # the link is not used up by a refused password
    done = await _confirm(mail_harness, token)
    assert done.status_code == 204, done.text

    for access in (account.access_token, other_device["access_token"]):
        me = await mail_harness.client.get(
            "/api/auth/me", headers={"Authorization": f"Bearer {access}"}
        )
        assert me.status_code == 401
    refreshed = await mail_harness.client.post(
        "/api/auth/refresh", json={"refresh_token": account.refresh_token}
    )
    assert refreshed.status_code == 401
    old = await mail_harness.client.post(
        "/api/auth/login", json={"username": "bob", "password": PASSWORD}
    )
    assert old.status_code == 401
    new = await mail_harness.login("bob", NEW_PASSWORD)
    assert new["user"]["email_verified"] is True  # the mail reached the address

    reused = await _confirm(mail_harness, token, "another new passphrase")
    assert reused.status_code == 400
    assert reused.json()["code"] == "invalid_link"


async def test_expired_replaced_and_forged_links_fail(
    mail_harness: Harness, smtp_server: SmtpServer
) -> None:
    await sign_up(mail_harness, "carol", "carol@example.com")
    for _ in range(2):
        await _ask(mail_harness, "carol@example.com")
        await _settle(mail_harness)
    messages = await smtp_server.await_for(3)
    first, second = token_in(messages[1]), token_in(messages[2])
    assert (await _confirm(mail_harness, first)).status_code == 400  # replaced by the second
    await expire_links(mail_harness)
    assert (await _confirm(mail_harness, second)).status_code == 400
    assert (await _confirm(mail_harness, "forged-token")).status_code == 400
    await mail_harness.login("carol", PASSWORD)  # unchanged

    # Only hashes are stored.
    async with mail_harness.app.state.ctx.sessionmaker() as db:
        hashes = (await db.scalars(select(AccountToken.token_hash))).all()
    assert len(hashes) == 3  # the confirmation link and the two reset links
    assert first not in hashes
    assert second not in hashes


async def test_asking_is_limited_per_address_and_per_client_address(
    harness_factory: HarnessFactory, smtp_server: SmtpServer
) -> None:
    harness = await mail_app(
        harness_factory, smtp_server, mail_max_per_address_per_hour=2, mail_max_per_ip_per_hour=5
    )
    for _ in range(2):
        assert (await _ask(harness, "someone@example.com")).status_code == 202
    per_address = await _ask(harness, "someone@example.com")
    assert per_address.status_code == 429
    assert per_address.json()["code"] == "mail_throttled"
    for index in range(2):
        assert (await _ask(harness, f"other{index}@example.com")).status_code == 202
    per_ip = await _ask(harness, "fresh@example.com")  # 5 asked from this address in all
    assert per_ip.status_code == 429


async def test_without_mail_reset_is_unavailable_for_every_address(
    harness_factory: HarnessFactory,
) -> None:
    harness = await harness_factory()
    assert (await harness.client.get("/api/settings/public")).json()["mail_enabled"] is False
    answers = [await _ask(harness, email) for email in ("root@example.com", "x@example.com")]
    assert {a.status_code for a in answers} == {503}
    assert answers[0].json() == answers[1].json()


async def test_a_disabled_account_gets_no_link(
    mail_harness: Harness, smtp_server: SmtpServer
) -> None:
    account = await sign_up(mail_harness, "dave", "dave@example.com")
    await smtp_server.await_for(1)
    admin = await mail_harness.admin_headers()
    await mail_harness.client.patch(
        f"/api/admin/users/{account.id}", json={"status": "disabled"}, headers=admin
    )
    assert (await _ask(mail_harness, "dave@example.com")).status_code == 202
    await _settle(mail_harness)
    await mail_harness.app.state.ctx.outbox.stop(grace_seconds=5)
    assert len(smtp_server.messages) == 1  # only the confirmation mail from registering
