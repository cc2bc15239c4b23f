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


ENCODINGS = ["utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le"]


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize("content_type", ["application/json", None, "application/merge-patch+json"])
def test_json_in_another_encoding_is_refused_before_a_nul_can_hide_in_it(
    gateway: LiveGateway, encoding: str, content_type: str | None
) -> None:
    """Python's JSON parser reads UTF-16/32 and a UTF-8 byte order mark, where the bytes of an
    escaped NUL look different: such bodies are refused (415), with or without a NUL, and
    nothing is stored (PostgreSQL answered 500 to the NUL)."""
    headers = {**gateway.admin}
    if content_type:
        headers["Content-Type"] = content_type
    for name in ("a\\u0000b", "plain"):
        body = ('{"name": "' + name + '"}').encode(encoding)
        response = gateway.http.post("/api/keys", content=body, headers=headers)
        assert response.status_code == 415, response.text
        assert response.json()["code"] == "unsupported_encoding"
    assert _keys(gateway) == []


def test_utf8_json_is_still_read(gateway: LiveGateway) -> None:
    body = '{"name": "密钥"}'.encode()
    response = gateway.http.post(
        "/api/keys", content=body, headers={**gateway.admin, "Content-Type": "application/json"}
    )
    assert response.status_code == 201, response.text
    assert _keys(gateway) == ["密钥"]


def _nested(depth: int, kind: str) -> bytes:
    """`depth` levels of nesting; some with an escaped NUL at the bottom (which makes the NUL
    check walk the whole depth)."""
    nul = b'"\\u0000"'
    if kind == "arrays":
        return b"[" * depth + b"]" * depth
    if kind == "arrays-nul":
        return b"[" * depth + nul + b"]" * depth
    if kind == "objects-nul":
        return b'{"a":' * depth + nul + b"}" * depth
    return b'{"username": "x", "password": ' + b"[" * depth + nul + b"]" * depth + b"}"


@pytest.mark.parametrize("depth", [900, 1_000, 2_000, 100_000])
@pytest.mark.parametrize("kind", ["arrays", "arrays-nul", "objects-nul", "in-a-field"])
@pytest.mark.parametrize(
    ("method", "path", "signed_in"),
    [
        ("POST", "/api/auth/login", False),
        ("POST", "/api/auth/register", False),
        ("POST", "/api/auth/refresh", False),
        ("POST", "/api/keys", True),
        ("POST", "/api/conversations/import", True),
        ("PUT", "/api/admin/settings", True),
    ],
)
def test_deeply_nested_json_is_refused_never_a_500(
    gateway: LiveGateway, method: str, path: str, signed_in: bool, kind: str, depth: int
) -> None:
    headers = {"Content-Type": "application/json", **(gateway.admin if signed_in else {})}
    response = gateway.http.request(method, path, content=_nested(depth, kind), headers=headers)
    # 422 (the NUL found, or the shape refused) or 400 (too deep to parse): never a 500.
    assert response.status_code in (400, 422), response.text[:300]
    assert _keys(gateway) == []


@pytest.mark.parametrize("depth", [2_000, 100_000])
def test_deeply_nested_json_on_v1_is_a_400_envelope(
    gateway: LiveGateway, mock_upstream: MockServer, depth: int
) -> None:
    key = gateway.create_key()
    body = b'{"model": "mock-gpt", "messages": ' + b"[" * depth + b"]" * depth + b"}"
    response = gateway.http.post(
        "/v1/chat/completions",
        content=body,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    assert response.status_code == 400, response.text[:300]
    assert "error" in response.json()
    assert mock_upstream.state.total == 0
