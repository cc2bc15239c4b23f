"""Mails near the limit: at 80 % and 100 % of a budget (the user's, a key's) and of a balance,
once per period and level, to the user and every admin."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import func, select

from app.mail.cache import SmtpConfig
from app.mail.outbox import Outbox, _decode
from app.mail.spend_alerts import SpendAlertMail
from app.models import MailOutboxEntry, SpendAlert, User
from tests.billing.test_spend import _row
from tests.conftest import Harness
from tests.logs.rows import write

SMTP = SmtpConfig(
    host="smtp.invalid",
    port=25,
    security="none",
    username="",
    password=None,
    from_address="gateway@example.com",
    from_name="",
    source="environment",
)


async def _mails(harness: Harness) -> list[Any]:
    ctx = harness.app.state.ctx
    async with ctx.sessionmaker() as db:
        rows = (
            await db.scalars(
                select(MailOutboxEntry).where(MailOutboxEntry.purpose == "spend_alert")
            )
        ).all()
    return [_decode(ctx.secret_box.decrypt(row.message_encrypted)) for row in rows]


async def test_budget_and_balance_alerts_are_mailed_once(
    harness: Harness, client: httpx.AsyncClient, make_account: Any
) -> None:
    ctx = harness.app.state.ctx
    admin = await harness.admin_headers()
    user = await make_account(email="spender@example.com")
    admin_id = (await client.get("/api/auth/me", headers=admin)).json()["id"]
    changed = await client.patch(
        f"/api/admin/users/{admin_id}", json={"email": "root@example.com"}, headers=admin
    )
    assert changed.status_code == 200, changed.text
    await client.patch(
        f"/api/admin/users/{user.id}", json={"budget": "1", "budget_period": "day"}, headers=admin
    )
    # An outbox that is not sending, so that the mails stay to be read.
    outbox = Outbox(ctx.settings.mail, lambda: SMTP, ctx.sessionmaker, ctx.secret_box)
    mailer = SpendAlertMail(
        ctx.sessionmaker, outbox, lambda: SMTP, ctx.runtime, ctx.settings.server.timezone
    )
    assert await mailer.run_once() == 0  # nothing spent yet
    now = datetime.now(UTC)
    await write(harness.app, [_row(0, 850_000_000, user_id=user.id, created_at=now)])  # 0.85
    assert await mailer.run_once() == 1
    assert await mailer.run_once() == 0  # told once
    mails = await _mails(harness)
    assert sorted(str(m["To"]) for m in mails) == ["root@example.com", "spender@example.com"]
    assert "85" not in str(mails[0]["Subject"])
    assert "80%" in str(mails[0]["Subject"])
    assert "0.85 of 1 USD" in mails[0].get_body(("plain",)).get_content()
    await write(harness.app, [_row(1, 200_000_000, user_id=user.id, created_at=now)])  # 1.05
    assert await mailer.run_once() == 1  # 100 %: told too
    assert "used up" in str((await _mails(harness))[-1]["Subject"])

    # A balance: 80 % used, then a top-up starts it over.
    top = await client.post(
        f"/api/admin/users/{user.id}/balance", json={"amount": "10"}, headers=admin
    )
    assert top.status_code == 201
    async with ctx.sessionmaker() as db:
        spender = await db.get(User, user.id)
        assert spender is not None
        spender.balance_nano = 1_000_000_000  # 9 of 10 used
        await db.commit()
    assert await mailer.run_once() == 1
    await client.post(f"/api/admin/users/{user.id}/balance", json={"amount": "1"}, headers=admin)
    async with ctx.sessionmaker() as db:
        await db.execute(User.__table__.update().where(User.id == user.id).values(balance_nano=0))
        await db.commit()
    assert await mailer.run_once() == 1  # empty, after the new top-up: told again
    async with ctx.sessionmaker() as db:
        levels = sorted((await db.execute(select(SpendAlert.subject, SpendAlert.level))).all())
        assert await db.scalar(select(func.count()).select_from(SpendAlert)) == 4
    assert levels == [
        (f"balance:{user.id}", 80),
        (f"balance:{user.id}", 100),
        (f"user:{user.id}", 80),
        (f"user:{user.id}", 100),
    ]


async def test_nothing_is_sent_without_mail_settings(harness: Harness) -> None:
    ctx = harness.app.state.ctx
    unconfigured = SmtpConfig("", 25, "none", "", None, "", "", "environment")
    mailer = SpendAlertMail(
        ctx.sessionmaker, ctx.outbox, lambda: unconfigured, ctx.runtime,
        ctx.settings.server.timezone,
    )  # fmt: skip
    assert await mailer.run_once() == 0
