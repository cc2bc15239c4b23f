"""A sentinel channel key never leaves the gateway: not in responses (CSV exports included), log
lines or call-log rows."""

from __future__ import annotations

import httpx
import openai
import pytest

from app.devtools.mock_upstream import MockServer
from tests.live import UPSTREAM_KEY, LiveGateway, LogCapture

MESSAGES = [{"role": "user", "content": "hi"}]


def test_the_channel_key_never_appears_anywhere(
    gateway: LiveGateway, mock_upstream: MockServer, log_capture: LogCapture
) -> None:
    seen: list[str] = []

    def keep(response: httpx.Response) -> None:
        response.read()
        seen.append(response.text)
        seen.append(str(response.headers))

    mock_upstream.set_profile("echo401", status=401, echo_key=1)
    mock_upstream.set_profile("echo500", status=500, echo_key=1)
    mock_upstream.set_profile("drops", drop_after=2)
    channels = [
        gateway.create_channel(
            name="echo401", base_url=mock_upstream.base_url("echo401"), models=["a"]
        ),
        gateway.create_channel(
            name="echo500", base_url=mock_upstream.base_url("echo500"), models=["b"]
        ),
        gateway.create_channel(
            name="drops", base_url=mock_upstream.base_url("drops"), models=["c"]
        ),
        gateway.create_channel(name="fine", base_url=mock_upstream.base_url("fine"), models=["d"]),
    ]
    key = gateway.create_key()
    http = httpx.Client(base_url=gateway.url, event_hooks={"response": [keep]}, timeout=30)
    auth = {"Authorization": f"Bearer {key}"}
    with http:
        for model in ("a", "b", "c", "d"):
            for stream in (False, True):
                http.post(
                    "/v1/chat/completions",
                    json={"model": model, "messages": MESSAGES, "stream": stream},
                    headers=auth,
                )
        for channel in channels:
            http.post(f"/api/admin/channels/{channel['id']}/test", json={}, headers=gateway.admin)
            http.post(f"/api/admin/channels/{channel['id']}/fetch-models", headers=gateway.admin)
        http.get("/api/admin/channels", headers=gateway.admin)
        http.get("/v1/models", headers=auth)
        # Where the upstream's (scrubbed) error texts end up: log pages, details, CSV exports.
        gateway.wait_for_logs(8)
        page = http.get("/api/admin/logs", headers=gateway.admin).json()["items"]
        assert any(item["error_message"] for item in page), "errors were recorded"
        for item in page:
            http.get(f"/api/admin/logs/{item['id']}", headers=gateway.admin)
        for export in ("/api/admin/logs/export", "/api/usage/export"):
            csv = http.get(export, headers=gateway.admin)
            assert csv.status_code == 200
            # Every call of the run is a line (after the header), echoed errors included.
            assert len(csv.text.strip().splitlines()) > len(page)
        # The admin's export keeps the upstream's echo (scrubbed); a caller's own shows none.
        admin_csv = http.get("/api/admin/logs/export", headers=gateway.admin).text
        assert "Incorrect API key provided: Bearer sk-…" in admin_csv
        assert (
            "Incorrect API key provided"
            not in http.get("/api/usage/export", headers=gateway.admin).text
        )
    with openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=key, max_retries=0) as client:
        for model in ("a", "b"):
            with pytest.raises(openai.APIError) as info:
                client.chat.completions.create(model=model, messages=MESSAGES)  # type: ignore[arg-type]
            seen.append(str(info.value))
    rows = gateway.call_logs()

    # The upstream really did echo the key back: otherwise this test proves nothing.
    assert any(UPSTREAM_KEY in (r.authorization or "") for r in mock_upstream.state.requests)
    assert len(seen) > 20
    assert rows
    assert log_capture.lines, "logging was captured"
    for text in seen:
        assert UPSTREAM_KEY not in text
    for line in log_capture.lines:
        assert UPSTREAM_KEY not in line
    for row in rows:
        assert UPSTREAM_KEY not in str(row.__dict__)
    for channel in gateway.channels_in_db():
        assert UPSTREAM_KEY not in (channel.status_detail or "")
        assert UPSTREAM_KEY not in (channel.last_test_error or "")
