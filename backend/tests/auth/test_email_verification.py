"""Confirming an e-mail address through a mailed link, and a site that requires it to chat."""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx

from app.devtools.mock_upstream import MockServer
from tests.auth.conftest import PASSWORD, expire_links, mail_app, sign_up
from tests.conftest import Harness, HarnessFactory
from tests.live import UPSTREAM_KEY
from tests.mail_server import PUBLIC_URL, SmtpServer, html_of, link_in, text_of, token_in


async def _verify(harness: Harness, token: str) -> httpx.Response:
    return await harness.client.post("/api/auth/verify-email", json={"token": token})


async def test_registering_mails_a_link_that_confirms_the_address_once(
    mail_harness: Harness, smtp_server: SmtpServer
) -> None:
    account = await sign_up(mail_harness, "alice", "Alice@Example.com")
    me = (await mail_harness.client.get("/api/auth/me", headers=account.headers)).json()
    assert me["email_verified"] is False

    message = (await smtp_server.await_for(1))[0]
    assert message["To"] == "alice@example.com"
    link = link_in(message)
    assert urlsplit(link).netloc == urlsplit(PUBLIC_URL).netloc
    assert urlsplit(link).path == "/verify-email"
    assert link in html_of(message)
    assert "48 hours" in text_of(message)
    assert PASSWORD not in text_of(message)
    assert PASSWORD not in html_of(message)

    confirmed = await _verify(mail_harness, token_in(message))
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["email_verified"] is True
    me = (await mail_harness.client.get("/api/auth/me", headers=account.headers)).json()
    assert me["email_verified"] is True

    reused = await _verify(mail_harness, token_in(message))
    assert reused.status_code == 400
    assert reused.json()["code"] == "invalid_link"


async def test_links_expire_and_forged_links_fail(
    mail_harness: Harness, smtp_server: SmtpServer
) -> None:
    account = await sign_up(mail_harness, "bob", "bob@example.com")
    token = token_in((await smtp_server.await_for(1))[0])
    await expire_links(mail_harness)
    for bad in (token, token[:-2] + "xx", "x" * 43, "x" * 500):
        refused = await _verify(mail_harness, bad)
        assert refused.status_code in (400, 422), refused.text
    me = (await mail_harness.client.get("/api/auth/me", headers=account.headers)).json()
    assert me["email_verified"] is False


async def test_a_new_link_replaces_the_old_and_is_rate_limited(
    harness_factory: HarnessFactory, smtp_server: SmtpServer
) -> None:
    harness = await mail_app(
        harness_factory, smtp_server, email_verification=True, mail_max_per_address_per_hour=3
    )
    account = await sign_up(harness, "carol", "carol@example.com")  # mail 1
    for _ in range(2):  # mails 2 and 3
        sent = await harness.client.post("/api/auth/send-verification", headers=account.headers)
        assert sent.status_code == 202, sent.text
    limited = await harness.client.post("/api/auth/send-verification", headers=account.headers)
    assert limited.status_code == 429
    assert limited.json()["code"] == "mail_throttled"
    assert int(limited.headers["retry-after"]) > 0

    messages = await smtp_server.await_for(3)
    old, newest = token_in(messages[0]), token_in(messages[2])
    assert (await _verify(harness, old)).status_code == 400  # replaced by a newer link
    assert (await _verify(harness, newest)).status_code == 200
    again = await harness.client.post("/api/auth/send-verification", headers=account.headers)
    assert again.status_code in (409, 429)


async def test_changing_the_address_unconfirms_it_and_old_links_stop_working(
    mail_harness: Harness, smtp_server: SmtpServer
) -> None:
    account = await sign_up(mail_harness, "dave", "dave@example.com")
    first = token_in((await smtp_server.await_for(1))[0])
    changed = await mail_harness.client.patch(
        "/api/auth/me", json={"email": "dave2@example.com"}, headers=account.headers
    )
    assert changed.status_code == 200
    assert changed.json()["email_verified"] is False
    second = (await smtp_server.await_for(2))[1]
    assert second["To"] == "dave2@example.com"
    assert (await _verify(mail_harness, first)).status_code == 400
    assert (await _verify(mail_harness, token_in(second))).json()["email"] == "dave2@example.com"

    # Confirmed, then changed again: unconfirmed.
    changed = await mail_harness.client.patch(
        "/api/auth/me", json={"email": "dave3@example.com"}, headers=account.headers
    )
    assert changed.json()["email_verified"] is False


async def test_sending_a_link_needs_an_address_mail_and_an_unconfirmed_one(
    harness_factory: HarnessFactory, smtp_server: SmtpServer
) -> None:
    without_mail = await harness_factory()
    account = await sign_up(without_mail, "erin", "erin@example.com")
    refused = await without_mail.client.post("/api/auth/send-verification", headers=account.headers)
    assert refused.status_code == 503
    assert refused.json()["code"] == "mail_unavailable"

    harness = await mail_app(harness_factory, smtp_server)
    nobody = await sign_up(harness, "frank")
    no_email = await harness.client.post("/api/auth/send-verification", headers=nobody.headers)
    assert no_email.status_code == 422
    assert no_email.json()["code"] == "no_email"
    # email_verification is off: registering sent nothing; asking does.
    grace = await sign_up(harness, "grace", "grace@example.com")
    assert smtp_server.messages == []
    asked = await harness.client.post("/api/auth/send-verification", headers=grace.headers)
    assert asked.status_code == 202
    await _verify(harness, token_in((await smtp_server.await_for(1))[0]))
    already = await harness.client.post("/api/auth/send-verification", headers=grace.headers)
    assert already.status_code == 409
    assert already.json()["code"] == "already_verified"


async def test_a_site_can_require_a_confirmed_address_to_chat(
    harness_factory: HarnessFactory, smtp_server: SmtpServer, mock_upstream: MockServer
) -> None:
    harness = await mail_app(
        harness_factory, smtp_server, email_verification=True, require_verified_email=True
    )
    admin = await harness.admin_headers()
    channel = await harness.client.post(
        "/api/admin/channels",
        json={
            "name": "mock",
            "base_url": mock_upstream.base_url(),
            "api_key": UPSTREAM_KEY,
            "models": ["mock-gpt"],
        },
        headers=admin,
    )
    assert channel.status_code == 201, channel.text
    account = await sign_up(harness, "heidi", "heidi@example.com")
    key = await harness.client.post("/api/keys", json={"name": "k"}, headers=account.headers)
    api = {"Authorization": f"Bearer {key.json()['key']}"}
    conversation = await harness.client.post(
        "/api/conversations", json={"model": "mock-gpt"}, headers=account.headers
    )
    chat_path = f"/api/conversations/{conversation.json()['id']}/messages"
    v1_body = {"model": "mock-gpt", "messages": [{"role": "user", "content": "hi"}]}

    held = await harness.client.post(chat_path, json={"content": "hi"}, headers=account.headers)
    assert held.status_code == 403
    assert held.json()["code"] == "email_unverified"
    held_v1 = await harness.client.post("/v1/chat/completions", json=v1_body, headers=api)
    assert held_v1.status_code == 403
    assert held_v1.json()["error"]["code"] == "email_unverified"
    assert held_v1.json()["error"]["type"] == "permission_error"
    assert mock_upstream.state.chat_requests() == []

    # Admins are not held back.
    admin_v1 = await harness.client.post("/v1/chat/completions", json=v1_body, headers=admin)
    assert admin_v1.status_code == 200, admin_v1.text

    await _verify(harness, token_in((await smtp_server.await_for(1))[0]))
    allowed = await harness.client.post("/v1/chat/completions", json=v1_body, headers=api)
    assert allowed.status_code == 200, allowed.text
    async with harness.client.stream(
        "POST", chat_path, json={"content": "hi"}, headers=account.headers
    ) as stream:
        assert stream.status_code == 200
        assert "event: done" in (await stream.aread()).decode()


async def test_an_admin_can_mark_an_address_confirmed(
    mail_harness: Harness, smtp_server: SmtpServer
) -> None:
    account = await sign_up(mail_harness, "ivan", "ivan@example.com")
    admin = await mail_harness.admin_headers()
    marked = await mail_harness.client.patch(
        f"/api/admin/users/{account.id}", json={"email_verified": True}, headers=admin
    )
    assert marked.status_code == 200
    assert marked.json()["email_verified"] is True
    unmarked = await mail_harness.client.patch(
        f"/api/admin/users/{account.id}", json={"email_verified": False}, headers=admin
    )
    assert unmarked.json()["email_verified"] is False
