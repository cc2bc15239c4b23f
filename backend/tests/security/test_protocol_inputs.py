"""Admin input that ends up inside a protocol line (an HTTP header, an SMTP command, a mail
header): refused at the schema with a 422, never a 500 later."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import update

from app.devtools.mock_upstream import MockServer
from app.models import Channel
from tests.live import LiveGateway

BAD_LINES = ["sk-abc\r\nX-Injected: 1", "sk-a\nbc", "sk-\x00abc", "sk-abc\u2028def", "sk-\tabc"]
BAD_KEYS = [*BAD_LINES, "sk-ключ", "sk abc"]


@pytest.mark.parametrize("key", BAD_KEYS)
def test_a_channel_key_must_fit_in_a_header(
    gateway: LiveGateway, mock_upstream: MockServer, key: str
) -> None:
    body: dict[str, Any] = {"name": "x", "base_url": mock_upstream.base_url(), "api_key": key}
    created = gateway.http.post("/api/admin/channels", json=body, headers=gateway.admin)
    assert created.status_code == 422, created.text
    assert "api_key" in created.text
    assert key not in created.text
    fetched = gateway.http.post(
        "/api/admin/channels/fetch-models",
        json={"base_url": mock_upstream.base_url(), "api_key": key},
        headers=gateway.admin,
    )
    assert fetched.status_code == 422, fetched.text
    channel = gateway.create_channel(base_url=mock_upstream.base_url())
    changed = gateway.http.patch(
        f"/api/admin/channels/{channel['id']}", json={"api_key": key}, headers=gateway.admin
    )
    assert changed.status_code == 422, changed.text
    assert mock_upstream.state.total == 0


def test_a_bad_key_stored_earlier_fails_the_call_not_the_server(
    gateway: LiveGateway, mock_upstream: MockServer
) -> None:
    channel = gateway.create_channel(base_url=mock_upstream.base_url())

    async def store_bad_key() -> None:
        async with gateway.ctx.sessionmaker() as db:
            await db.execute(
                update(Channel)
                .where(Channel.id == channel["id"])
                .values(api_key_encrypted=gateway.ctx.secret_box.encrypt("sk-old\r\nX-Evil: 1"))
            )
            await db.commit()
        gateway.ctx.registry.invalidate()

    gateway.run(store_bad_key)
    tested = gateway.http.post(
        f"/api/admin/channels/{channel['id']}/test", json={}, headers=gateway.admin
    )
    assert tested.status_code == 200
    assert tested.json()["ok"] is False
    fetched = gateway.http.post(
        f"/api/admin/channels/{channel['id']}/fetch-models", headers=gateway.admin
    )
    assert fetched.status_code == 422
    call = gateway.http.post(
        "/v1/chat/completions",
        json={"model": "mock-gpt", "messages": [{"role": "user", "content": "x"}]},
        headers={"Authorization": f"Bearer {gateway.create_key()}"},
    )
    assert call.status_code == 502, call.text
    assert "X-Evil" not in call.text
    assert mock_upstream.state.total == 0


@pytest.mark.parametrize("field", ["username", "from_name", "password"])
@pytest.mark.parametrize("value", BAD_LINES)
def test_mail_settings_must_be_one_line(gateway: LiveGateway, field: str, value: str) -> None:
    body = {"host": "smtp.example.com", "from_address": "noreply@example.com", field: value}
    saved = gateway.http.put("/api/admin/mail", json=body, headers=gateway.admin)
    assert saved.status_code == 422, saved.text
    assert gateway.http.get("/api/admin/mail", headers=gateway.admin).json()["host"] != (
        "smtp.example.com"
    )


def test_a_test_mail_without_a_sender_is_a_422(gateway: LiveGateway) -> None:
    saved = gateway.http.put(
        "/api/admin/mail",
        json={"host": "smtp.example.com", "from_address": ""},
        headers=gateway.admin,
    )
    assert saved.status_code == 200, saved.text
    sent = gateway.http.post(
        "/api/admin/mail/test", json={"to": "someone@example.com"}, headers=gateway.admin
    )
    assert sent.status_code == 422, sent.text
    assert sent.json()["code"] == "mail_not_configured"


@pytest.mark.parametrize("key", ["site_name", "public_url", "default_model", "chat_title_model"])
@pytest.mark.parametrize("value", ["Site\r\nBcc: everyone@example.com", "a\u2029b", "x\x00"])
def test_runtime_settings_that_reach_mail_and_links_are_one_line(
    gateway: LiveGateway, key: str, value: str
) -> None:
    before = gateway.http.get("/api/admin/settings", headers=gateway.admin).json()
    saved = gateway.http.put("/api/admin/settings", json={key: value}, headers=gateway.admin)
    assert saved.status_code == 422, saved.text
    after = gateway.http.get("/api/admin/settings", headers=gateway.admin).json()
    assert after == before


def test_a_pasted_key_with_a_line_break_after_it_is_taken_without_it(
    gateway: LiveGateway, mock_upstream: MockServer
) -> None:
    channel = gateway.create_channel(base_url=mock_upstream.base_url(), api_key=" sk-pasted\r\n")
    assert channel["api_key_hint"].endswith("sted")
    call = gateway.http.post(
        "/v1/chat/completions",
        json={"model": "mock-gpt", "messages": [{"role": "user", "content": "x"}]},
        headers={"Authorization": f"Bearer {gateway.create_key()}"},
    )
    assert call.status_code == 200, call.text
    assert mock_upstream.state.requests[-1].authorization == "Bearer sk-pasted"
