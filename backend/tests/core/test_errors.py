from __future__ import annotations

import httpx

from tests.conftest import Harness


async def test_unknown_api_route_is_json_404(harness: Harness) -> None:
    response = await harness.client.get("/api/does-not-exist")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not Found", "code": "not_found"}


async def test_unknown_v1_route_uses_the_openai_envelope(harness: Harness) -> None:
    response = await harness.client.get("/v1/nothing-here")
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["code"] == "unknown_url"
    assert set(error) == {"message", "type", "param", "code"}


async def test_wrong_method_is_405(harness: Harness) -> None:
    response = await harness.client.put("/api/auth/login", json={})
    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"


async def test_validation_errors_name_fields_and_never_echo_input(harness: Harness) -> None:
    response = await harness.client.post(
        "/api/auth/register",
        json={"username": "ok_name", "password": "tiny-secret"[:5], "email": "nope"},
    )
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "validation_error"
    fields = {tuple(item["loc"]) for item in body["detail"]}
    assert fields == {("body", "password"), ("body", "email")}
    for item in body["detail"]:
        assert set(item) == {"loc", "msg", "type"}
    assert "tiny-" not in response.text


async def test_unhandled_errors_are_a_bare_500(harness: Harness) -> None:
    async def explode() -> None:
        raise RuntimeError("internal detail: /srv/secret/path line 42")

    harness.app.add_api_route("/api/test-explode", explode)
    routes = harness.app.router.routes
    routes.insert(0, routes.pop())  # ahead of the SPA's catch-all mount, when the SPA is built
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=harness.app, raise_app_exceptions=False),
        base_url="http://testserver",
    )
    async with client:
        response = await client.get("/api/test-explode")
    assert response.status_code == 500
    assert response.json() == {"detail": "Internal server error", "code": "internal_error"}
    assert "secret" not in response.text
    assert "Traceback" not in response.text
