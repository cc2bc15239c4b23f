"""The edges of `/v1`: unknown paths, wrong methods, trailing slashes and CORS, over real HTTP."""

from __future__ import annotations

import openai
import pytest

from app.devtools.mock_upstream import MockServer
from tests.live import GatewayFactory, LiveGateway

MESSAGES = [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v1/embeddings-that-do-not-exist"),
        ("GET", "/v1/nothing/here"),
        ("POST", "/v1"),
        ("DELETE", "/v1/files/abc"),
        ("PUT", "/v1/"),
    ],
)
def test_an_unknown_path_is_a_404_in_openais_envelope(
    gateway: LiveGateway, method: str, path: str
) -> None:
    response = gateway.http.request(method, path, headers={"Authorization": "Bearer sk-x"})
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert error["message"] == f"Invalid URL ({method} {path})"
    assert (error["type"], error["code"]) == ("invalid_request_error", "unknown_url")
    assert "allow" not in response.headers


@pytest.mark.parametrize(
    ("method", "path"), [("GET", "/v1/chat/completions"), ("POST", "/v1/models")]
)
def test_a_wrong_method_is_a_405_in_openais_envelope(
    gateway: LiveGateway, method: str, path: str
) -> None:
    response = gateway.http.request(method, path, headers={"Authorization": "Bearer sk-x"})
    assert response.status_code == 405
    assert response.headers["allow"] == ("POST" if method == "GET" else "GET")
    assert response.json()["error"]["code"] == "method_not_allowed"


def test_a_trailing_slash_works(gateway: LiveGateway, mock_upstream: MockServer) -> None:
    gateway.create_channel(base_url=mock_upstream.base_url())
    key = {"Authorization": f"Bearer {gateway.create_key()}"}
    models = gateway.http.get("/v1/models/", headers=key)
    assert models.status_code == 200
    assert [m["id"] for m in models.json()["data"]] == ["mock-gpt"]
    chat = gateway.http.post(
        "/v1/chat/completions/", json={"model": "mock-gpt", "messages": MESSAGES}, headers=key
    )
    assert chat.status_code == 200, chat.text
    assert chat.json()["choices"][0]["message"]["content"].startswith("Hello")


def test_the_sdk_sees_an_unknown_endpoint_as_not_found(gateway: LiveGateway) -> None:
    with (
        openai.OpenAI(
            base_url=f"{gateway.url}/v1", api_key=gateway.create_key(), max_retries=0
        ) as client,
        pytest.raises(openai.NotFoundError) as info,
    ):
        client.post("/no-such-endpoint", cast_to=object, body={})
    assert info.value.code == "unknown_url"


def test_cors_is_off_until_an_admin_allows_origins(
    gateway_factory: GatewayFactory, mock_upstream: MockServer
) -> None:
    gateway = gateway_factory()
    gateway.create_channel(base_url=mock_upstream.base_url())
    key = gateway.create_key()
    page = "https://app.example.com"
    preflight = {
        "Origin": page,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type, x-stainless-os",
    }
    off = gateway.http.options("/v1/chat/completions", headers=preflight)
    assert "access-control-allow-origin" not in off.headers
    call = {"Origin": page, "Authorization": f"Bearer {key}"}
    plain = gateway.http.post(
        "/v1/chat/completions", json={"model": "mock-gpt", "messages": MESSAGES}, headers=call
    )
    assert plain.status_code == 200
    assert "access-control-allow-origin" not in plain.headers

    bad = gateway.http.put(
        "/api/admin/settings",
        json={"cors_allowed_origins": "https://ok.example.com /path"},
        headers=gateway.admin,
    )
    assert bad.status_code == 422
    assert "not an origin" in bad.text
    saved = gateway.http.put(
        "/api/admin/settings",
        json={"cors_allowed_origins": "https://APP.example.com/, http://localhost:5173"},
        headers=gateway.admin,
    )
    assert saved.status_code == 200, saved.text
    stored = gateway.http.get("/api/admin/settings", headers=gateway.admin).json()
    assert stored["cors_allowed_origins"] == "https://app.example.com http://localhost:5173"

    allowed = gateway.http.options("/v1/chat/completions", headers=preflight)
    assert allowed.status_code == 204
    assert allowed.headers["access-control-allow-origin"] == page
    assert "POST" in allowed.headers["access-control-allow-methods"]
    assert (
        allowed.headers["access-control-allow-headers"]
        == "authorization, content-type, x-stainless-os"
    )
    assert "access-control-allow-credentials" not in allowed.headers
    assert allowed.headers["vary"] == "Origin"
    answered = gateway.http.post(
        "/v1/chat/completions", json={"model": "mock-gpt", "messages": MESSAGES}, headers=call
    )
    assert answered.headers["access-control-allow-origin"] == page
    assert "X-Request-ID" in answered.headers["access-control-expose-headers"]
    # Errors carry it too, or the page could not read them.
    refused = gateway.http.post(
        "/v1/chat/completions",
        json={},
        headers={"Origin": page, "Authorization": "Bearer sk-wrong"},
    )
    assert refused.status_code == 401
    assert refused.headers["access-control-allow-origin"] == page
    # Another page is not allowed; the console's own API gets no CORS at all.
    other = gateway.http.options(
        "/v1/chat/completions", headers={**preflight, "Origin": "https://evil.example"}
    )
    assert other.status_code == 403
    assert "access-control-allow-origin" not in other.headers
    api = gateway.http.get("/api/settings/public", headers={"Origin": page})
    assert "access-control-allow-origin" not in api.headers

    gateway.http.put(
        "/api/admin/settings", json={"cors_allowed_origins": "*"}, headers=gateway.admin
    )
    anyone = gateway.http.options(
        "/v1/models", headers={**preflight, "Origin": "https://evil.example"}
    )
    assert anyone.headers["access-control-allow-origin"] == "*"
    assert "vary" not in anyone.headers
