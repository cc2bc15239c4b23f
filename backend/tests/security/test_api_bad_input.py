"""Bad input to `/api` that a database would choke on: NUL characters and out-of-range ids.

Each is a 422 naming where the problem is, on SQLite and on PostgreSQL alike, and changes nothing.
"""

from __future__ import annotations

import pytest

from app.devtools.mock_upstream import MockServer
from tests.live import LiveGateway


def _keys(gateway: LiveGateway) -> list[str]:
    return [k["name"] for k in gateway.http.get("/api/keys", headers=gateway.admin).json()["items"]]


def test_nul_characters_in_a_json_body_are_refused_where_they_are(gateway: LiveGateway) -> None:
    for body, loc in (
        ({"name": "a\x00b"}, ["body", "name"]),
        ({"name": "k", "models": ["ok", "bad\x00"]}, ["body", "models", 1]),
    ):
        response = gateway.http.post("/api/keys", json=body, headers=gateway.admin)
        assert response.status_code == 422, response.text
        assert response.json()["detail"][0]["loc"] == loc
        assert response.json()["detail"][0]["type"] == "nul_character"
    imported = gateway.http.post(
        "/api/conversations/import",
        json={"version": 1, "messages": [{"role": "user", "content": "hi\x00"}]},
        headers=gateway.admin,
    )
    assert imported.status_code == 422
    assert imported.json()["detail"][0]["loc"] == ["body", "messages", 0, "content"]
    assert _keys(gateway) == []
    # The six characters `\u0000` written out are ordinary text.
    literal = gateway.http.post("/api/keys", json={"name": "a\\u0000b"}, headers=gateway.admin)
    assert literal.status_code == 201, literal.text
    assert _keys(gateway) == ["a\\u0000b"]


@pytest.mark.parametrize(
    ("method", "path", "where"),
    [
        ("GET", "/api/admin/ip-rules/attempts?ip=1.2.3.4%00", "query"),
        ("GET", "/api/admin/logs?model=a%00b", "query"),
        ("DELETE", "/api/admin/settings/site_name%00", "path"),
        ("GET", "/api/admin/users?q=%00", "query"),
    ],
)
def test_nul_characters_in_paths_and_queries_are_refused(
    gateway: LiveGateway, method: str, path: str, where: str
) -> None:
    response = gateway.http.request(method, path, headers=gateway.admin)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == [where]


def test_a_nul_in_a_sign_in_form_is_refused(gateway: LiveGateway) -> None:
    response = gateway.http.post(
        "/api/auth/token",
        content=b"username=root%00admin&password=x",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body"]


@pytest.mark.parametrize(
    "path",
    [
        "/api/keys/99999999999999999999",
        "/api/keys/2147483648",
        "/api/admin/users/0",
        "/api/admin/logs/9223372036854775808",
        "/api/admin/ip-rules/attempts?rule_id=-28734133411923",
        "/api/admin/logs?user_id=2147483648",
        "/api/conversations/1/messages?before=9223372036854775808",
    ],
)
def test_ids_no_row_can_have_are_refused(gateway: LiveGateway, path: str) -> None:
    response = gateway.http.get(path, headers=gateway.admin)
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "validation_error"


def test_imported_token_counts_must_fit(gateway: LiveGateway) -> None:
    response = gateway.http.post(
        "/api/conversations/import",
        json={
            "version": 1,
            "messages": [{"role": "assistant", "content": "x", "total_tokens": 2**40}],
        },
        headers=gateway.admin,
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][-1] == "total_tokens"


def test_a_v1_call_with_a_nul_in_its_model_is_answered_and_logged(
    gateway: LiveGateway, mock_upstream: MockServer
) -> None:
    """`/v1` relays what it is sent; the call-log row is stored with the NUL replaced."""
    gateway.create_channel(base_url=mock_upstream.base_url())
    response = gateway.http.post(
        "/v1/chat/completions",
        json={"model": "mock\x00gpt", "messages": [{"role": "user", "content": "x"}]},
        headers={"Authorization": f"Bearer {gateway.create_key()}"},
    )
    assert response.status_code == 404
    (row,) = gateway.wait_for_logs(1)
    assert row.requested_model in ("mock\x00gpt", "mock\ufffdgpt")
    assert row.status_code == 404
