"""Admins set up outgoing mail: settings from the environment or saved in the console, the password
stored encrypted and never returned, and a test mail that reports what the server said."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from app.models import MailConfig
from tests.conftest import HarnessFactory
from tests.mail_server import FROM_ADDRESS, SmtpServer, html_of, text_of
from tests.processes import free_port

SMTP_PASSWORD = "smtp-pass-SENTINEL-4e1f"


async def test_a_test_mail_arrives_in_the_callers_language_as_text_and_html(
    harness_factory: HarnessFactory, smtp_server: SmtpServer
) -> None:
    harness = await harness_factory(
        mail=smtp_server.env_settings(from_name="网关"), runtime={"site_name": "团队网关"}
    )
    admin = await harness.admin_headers()
    for language, subject in (
        ("zh-CN,zh;q=0.9", "来自 团队网关 的测试邮件"),
        ("en-US", "Test mail from 团队网关"),
    ):
        sent = await harness.client.post(
            "/api/admin/mail/test",
            json={"to": "Ops@Example.com"},
            headers={**admin, "Accept-Language": language},
        )
        assert sent.status_code == 200, sent.text
        assert sent.json() == {"ok": True, "error": None}
        message = (await smtp_server.await_for(1))[-1]
        smtp_server.messages.clear()
        assert message["Subject"] == subject
        assert message["To"] == "ops@example.com"
        assert message["From"].addresses[0].addr_spec == FROM_ADDRESS
        assert message["From"].addresses[0].display_name == "网关"
        assert message.get_content_type() == "multipart/alternative"
        assert "团队网关" in text_of(message)
        assert "<html" in html_of(message)
        assert "团队网关" in html_of(message)


async def test_mail_settings_come_from_the_environment_until_an_admin_saves_them(
    harness_factory: HarnessFactory, smtp_server: SmtpServer
) -> None:
    harness = await harness_factory(mail=smtp_server.env_settings(password=SMTP_PASSWORD))
    admin = await harness.admin_headers()
    read = (await harness.client.get("/api/admin/mail", headers=admin)).json()
    assert read["source"] == "environment"
    assert read["configured"] is True
    assert read["password_set"] is True
    assert SMTP_PASSWORD not in str(read)


async def test_a_saved_password_is_encrypted_never_returned_and_used(
    harness_factory: HarnessFactory,
) -> None:
    server = SmtpServer(credentials=("mailer", SMTP_PASSWORD)).start()
    try:
        harness = await harness_factory()
        admin = await harness.admin_headers()
        before = (await harness.client.get("/api/admin/mail", headers=admin)).json()
        assert before["configured"] is False
        assert (await harness.client.get("/api/settings/public")).json()["mail_enabled"] is False

        body: dict[str, Any] = {
            "host": "127.0.0.1",
            "port": server.port,
            "security": "none",
            "username": "mailer",
            "password": SMTP_PASSWORD,
            "from_address": FROM_ADDRESS,
            "from_name": "Gateway",
        }
        saved = await harness.client.put("/api/admin/mail", json=body, headers=admin)
        assert saved.status_code == 200, saved.text
        assert saved.json()["source"] == "admin"
        assert saved.json()["password_set"] is True
        assert SMTP_PASSWORD not in saved.text
        assert (
            SMTP_PASSWORD not in (await harness.client.get("/api/admin/mail", headers=admin)).text
        )

        async with harness.app.state.ctx.sessionmaker() as db:
            row = await db.scalar(select(MailConfig))
        assert row is not None
        assert row.password_encrypted
        assert SMTP_PASSWORD not in row.password_encrypted

        sent = await harness.client.post(
            "/api/admin/mail/test", json={"to": "ops@example.com"}, headers=admin
        )
        assert sent.json() == {"ok": True, "error": None}
        server.wait_for(1)

        # Saving without a password keeps the stored one.
        body.pop("password")
        kept = await harness.client.put(
            "/api/admin/mail", json={**body, "from_name": "Renamed"}, headers=admin
        )
        assert kept.json()["password_set"] is True
        sent = await harness.client.post(
            "/api/admin/mail/test", json={"to": "ops@example.com"}, headers=admin
        )
        assert sent.json()["ok"] is True

        # A wrong password: the admin is told the server refused it, and the password is not echoed.
        await harness.client.put(
            "/api/admin/mail", json={**body, "password": "wrong-SENTINEL"}, headers=admin
        )
        refused = await harness.client.post(
            "/api/admin/mail/test", json={"to": "ops@example.com"}, headers=admin
        )
        assert refused.status_code == 200
        assert refused.json()["ok"] is False
        assert "refused the user name or password" in refused.json()["error"]
        assert "wrong-SENTINEL" not in refused.text

        # "" removes it.
        cleared = await harness.client.put(
            "/api/admin/mail", json={**body, "password": ""}, headers=admin
        )
        assert cleared.json()["password_set"] is False
    finally:
        server.stop()


async def test_an_unreachable_server_is_reported_not_raised(
    harness_factory: HarnessFactory,
) -> None:
    harness = await harness_factory(
        mail={
            "host": "127.0.0.1",
            "port": free_port(),
            "security": "none",
            "from_address": FROM_ADDRESS,
        }
    )
    admin = await harness.admin_headers()
    result = await harness.client.post(
        "/api/admin/mail/test", json={"to": "ops@example.com"}, headers=admin
    )
    assert result.status_code == 200
    assert result.json()["ok"] is False
    assert "Could not reach the mail server" in result.json()["error"]


async def test_bad_mail_settings_are_refused_and_change_nothing(
    harness_factory: HarnessFactory, smtp_server: SmtpServer
) -> None:
    harness = await harness_factory(mail=smtp_server.env_settings())
    admin = await harness.admin_headers()
    for bad in (
        {"host": "mail.example.com", "port": 0},
        {"host": "mail.example.com", "security": "ssl"},
        {"host": "mail.example.com", "from_address": "not an address"},
        {"host": "mail.example.com/evil"},
        {"host": "mail.example.com", "unknown": 1},
    ):
        refused = await harness.client.put("/api/admin/mail", json=bad, headers=admin)
        assert refused.status_code == 422, (bad, refused.text)
    assert (await harness.client.get("/api/admin/mail", headers=admin)).json()["source"] == (
        "environment"
    )
    user = await harness.client.post(
        "/api/auth/register", json={"username": "plainuser", "password": "correct horse battery"}
    )
    assert user.status_code == 201
    tokens = await harness.login("plainuser", "correct horse battery")
    forbidden = await harness.client.get(
        "/api/admin/mail", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert forbidden.status_code == 403


async def test_first_saves_at_once_all_succeed(harness_factory: HarnessFactory) -> None:
    """Two admins saving the mail settings for the first time at the same moment: one creates
    the settings row, the others update it; nobody gets a 500."""
    import asyncio

    harness = await harness_factory()
    admin = await harness.admin_headers()
    bodies = [
        {
            "host": f"smtp{i}.example.com",
            "port": 587,
            "security": "starttls",
            "from_address": f"noreply{i}@example.com",
        }
        for i in range(6)
    ]
    saved = await asyncio.gather(
        *(harness.client.put("/api/admin/mail", json=b, headers=admin) for b in bodies)
    )
    assert [r.status_code for r in saved] == [200] * 6, [r.text for r in saved]
    current = await harness.client.get("/api/admin/mail", headers=admin)
    assert current.json()["host"] in {b["host"] for b in bodies}
