"""Bad requests to /v1 get OpenAI error envelopes, and no upstream call is made."""

from __future__ import annotations

from typing import Any

import pytest

from app.devtools.mock_upstream import MockServer
from tests.live import LiveGateway


@pytest.fixture
def key(gateway: LiveGateway, mock_upstream: MockServer) -> str:
    gateway.create_channel(base_url=mock_upstream.base_url())
    return gateway.create_key()


def _post(gateway: LiveGateway, key: str, content: bytes) -> Any:
    return gateway.http.post(
        "/v1/chat/completions",
        content=content,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (b'{"model": "mock-gpt", "messages": []}', "messages"),
        (b'{"model": "mock-gpt"}', "messages"),
        (b'{"messages": [{"role": "user", "content": "x"}]}', "model"),
        (b'{"model": "", "messages": [{"role": "user", "content": "x"}]}', "model"),
        (b'{"model": 42, "messages": [{"role": "user", "content": "x"}]}', "model"),
        (
            b'{"model": "mock-gpt", "messages": [{"role": "wizard", "content": "x"}]}',
            "messages[0].role",
        ),
        (b'{"model": "mock-gpt", "messages": [{"role": "user"}]}', "messages[0].content"),
        (
            b'{"model": "mock-gpt", "messages": [{"role": "user", "content": 5}]}',
            "messages[0].content",
        ),
        (b'{"model": "mock-gpt", "messages": ["hello"]}', "messages[0]"),
        (b'{"model": "mock-gpt", "messages": [{"role": {}, "content": "x"}]}', "messages[0].role"),
        (
            b'{"model": "mock-gpt", "messages": [{"role": ["user"], "content": "x"}]}',
            "messages[0].role",
        ),
        (b'{"model": "mock-gpt", "messages": {"role": "user"}}', "messages"),
        (b'{"model": "mock-gpt", "messages": [{"role": "user", "content": "x"}], "n": 1000}', "n"),
        (b'{"model": "mock-gpt", "messages": [{"role": "user", "content": "x"}], "n": "2"}', "n"),
        (
            b'{"model": "mock-gpt", "messages": [{"role": "user", "content": "x"}], "stream": "yes"}',
            "stream",
        ),
        (
            b'{"model": "mock-gpt", "messages": [{"role": "user", "content": "x"}], "stream_options": 1}',
            "stream_options",
        ),
        (
            b'{"model": "mock-gpt", "messages": [{"role": "user", "content": "x"}], "api_base": "http://evil"}',
            "api_base",
        ),
        (
            b'{"model": "mock-gpt", "messages": [{"role": "user", "content": "x"}], "base_url": "http://evil"}',
            "base_url",
        ),
        (
            b'{"model": "mock-gpt", "messages": [{"role": "user", "content": "x"}], "api_key": "sk-x"}',
            "api_key",
        ),
        (
            b'{"model": "mock-gpt", "messages": [{"role": "user", "content": "x"}], "headers": {"a": "b"}}',
            "headers",
        ),
        (
            b'{"model": "mock-gpt", "messages": [{"role": "user", "content": "x"}], "temperature": NaN}',
            None,
        ),
        (
            b'{"model": "mock-gpt", "messages": [{"role": "user", "content": "x"}], "temperature": Infinity}',
            None,
        ),
        (b"[1, 2, 3]", None),
        (b"not json at all", None),
        (b"", None),
        (b"[" * 5000 + b"]" * 5000, None),
    ],
)
def test_bad_bodies_get_a_400_envelope_and_no_upstream_call(
    gateway: LiveGateway, key: str, mock_upstream: MockServer, body: bytes, param: str | None
) -> None:
    response = _post(gateway, key, body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert mock_upstream.state.total == 0
    (row,) = gateway.wait_for_logs(1)
    assert (row.end_reason, row.status_code, row.success) == ("rejected", 400, False)


def test_a_20_mb_body_is_413(gateway: LiveGateway, key: str, mock_upstream: MockServer) -> None:
    huge = (
        b'{"model": "mock-gpt", "messages": [{"role": "user", "content": "'
        + b"x" * (20 * 1024 * 1024)
        + b'"}]}'
    )
    response = _post(gateway, key, huge)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    assert mock_upstream.state.total == 0


def test_huge_arrays_and_deep_but_valid_json_pass_validation_cheaply(
    gateway: LiveGateway, key: str, mock_upstream: MockServer
) -> None:
    messages = b",".join([b'{"role": "user", "content": "x"}'] * 5000)
    response = _post(gateway, key, b'{"model": "mock-gpt", "messages": [' + messages + b"]}")
    assert response.status_code == 200
    assert mock_upstream.state.total == 1


@pytest.mark.parametrize(
    ("authorization", "code"),
    [
        (None, "missing_api_key"),
        ("Bearer", "missing_api_key"),
        ("Basic abc", "missing_api_key"),
        ("Bearer sk-not-a-real-key", "invalid_api_key"),
        ("Bearer not.a.jwt", "invalid_token"),
    ],
)
def test_authentication_failures_are_401_envelopes(
    gateway: LiveGateway, mock_upstream: MockServer, authorization: str | None, code: str
) -> None:
    headers = {"Authorization": authorization} if authorization is not None else {}
    for method, path in (("GET", "/v1/models"), ("POST", "/v1/chat/completions")):
        response = gateway.http.request(
            method, path, json={"model": "m", "messages": []}, headers=headers
        )
        assert response.status_code == 401
        assert response.json()["error"]["code"] == code
        assert response.json()["error"]["type"] == "authentication_error"
    assert mock_upstream.state.total == 0


def test_revoked_expired_and_disabled_keys_stop_at_once(
    gateway: LiveGateway, mock_upstream: MockServer
) -> None:
    gateway.create_channel(base_url=mock_upstream.base_url())
    key = gateway.create_key()
    body = {"model": "mock-gpt", "messages": [{"role": "user", "content": "x"}]}
    auth = {"Authorization": f"Bearer {key}"}
    assert gateway.http.post("/v1/chat/completions", json=body, headers=auth).status_code == 200
    key_id = gateway.http.get("/api/keys", headers=gateway.admin).json()["items"][0]["id"]
    gateway.http.delete(f"/api/keys/{key_id}", headers=gateway.admin)
    revoked = gateway.http.post("/v1/chat/completions", json=body, headers=auth)
    assert revoked.status_code == 401
    assert revoked.json()["error"]["code"] == "api_key_revoked"

    user = gateway.http.post(
        "/api/admin/users",
        json={"username": "dev", "password": "dev password 1"},
        headers=gateway.admin,
    ).json()
    token = gateway.http.post(
        "/api/auth/login", json={"username": "dev", "password": "dev password 1"}
    ).json()["access_token"]
    dev_key = gateway.http.post(
        "/api/keys", json={"name": "k"}, headers={"Authorization": f"Bearer {token}"}
    ).json()["key"]
    dev_auth = {"Authorization": f"Bearer {dev_key}"}
    assert gateway.http.post("/v1/chat/completions", json=body, headers=dev_auth).status_code == 200
    gateway.http.patch(
        f"/api/admin/users/{user['id']}", json={"status": "disabled"}, headers=gateway.admin
    )
    disabled = gateway.http.post("/v1/chat/completions", json=body, headers=dev_auth)
    assert disabled.status_code == 401
    assert disabled.json()["error"]["code"] == "account_disabled"


def test_wrong_method_is_405_and_v1_is_documented(gateway: LiveGateway) -> None:
    response = gateway.http.get("/v1/chat/completions")
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert response.json()["error"]["code"] == "method_not_allowed"
    schema = gateway.http.get("/openapi.json").json()
    assert "post" in schema["paths"]["/v1/chat/completions"]
    assert "get" in schema["paths"]["/v1/models"]
    assert schema["components"]["securitySchemes"]["OpenAIKey"]["scheme"] == "bearer"


def test_an_unexpected_failure_on_v1_is_a_bare_500_envelope(
    gateway: LiveGateway, key: str, log_capture: object
) -> None:
    async def explode(*_args: object) -> None:
        raise RuntimeError("internal detail /srv/secret")

    gateway.ctx.gateway.start_call = explode  # type: ignore[method-assign]
    response = _post(
        gateway, key, b'{"model": "mock-gpt", "messages": [{"role": "user", "content": "x"}]}'
    )
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "internal_error"
    assert "secret" not in response.text
    (row,) = gateway.wait_for_logs(1)
    assert row.status_code == 500
