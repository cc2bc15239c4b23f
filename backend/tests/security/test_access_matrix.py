"""Who may call what: every route of the app × every kind of caller, from the app's route table.

Each route has a decision in `DECISIONS`; a route added without one (or a decision left for a route
that is gone) fails `test_every_route_has_an_access_decision`. The matrix then calls every route as
each caller and checks the status:

  public   anyone, signed in or not
  user     a signed-in account (401 without one, 401 for a disabled account or an API key)
  owned    as `user`, and another account's object is 404 (never 200, never changed)
  admin    an admin's session (401 without one, 403 for a user)
  key      `/v1`: an API key (401 anonymous / revoked / expired / of a disabled user; a key without
           the model cannot use it)

Authorised calls use ids that do not exist (so nothing is changed by the matrix itself) and get
404 or a validation error, never 401/403/500; "other user" calls use the owner's real ids.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any, Literal

import httpx
import pytest
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute

from app.devtools.mock_upstream import MockServer
from app.gateway.endpoints import ROUTES as V1_ROUTES
from app.models import ApiKey
from app.models.base import utcnow
from tests.live import LiveGateway

Access = Literal["public", "user", "owned", "admin", "key"]
MISSING = 987654

DECISIONS: dict[tuple[str, str], Access] = {
    ("GET", "/"): "public",  # the SPA
    ("GET", "/docs"): "public",  # Swagger UI (the OpenAPI document is public too)
    ("GET", "/healthz"): "public",
    ("GET", "/readyz"): "public",
    ("GET", "/metrics"): "public",  # loopback is allowed by default; token rules: test_metrics
    ("GET", "/api/settings/public"): "public",
    ("POST", "/api/auth/register"): "public",
    ("POST", "/api/auth/login"): "public",
    ("POST", "/api/auth/admin/login"): "public",
    ("POST", "/api/auth/token"): "public",
    ("POST", "/api/auth/refresh"): "public",
    ("POST", "/api/auth/login/2fa"): "public",
    ("POST", "/api/auth/verify-email"): "public",
    ("POST", "/api/auth/password/reset"): "public",
    ("POST", "/api/auth/password/reset/confirm"): "public",
    ("POST", "/api/auth/send-verification"): "user",
    ("GET", "/api/auth/2fa"): "user",
    ("POST", "/api/auth/2fa/setup"): "user",
    ("POST", "/api/auth/2fa/enable"): "user",
    ("POST", "/api/auth/2fa/recovery-codes"): "user",
    ("POST", "/api/auth/2fa/disable"): "user",
    ("PUT", "/api/auth/me/avatar"): "user",
    ("DELETE", "/api/auth/me/avatar"): "user",
    ("GET", "/api/avatars/{content_hash}.webp"): "public",
    ("POST", "/api/auth/logout"): "user",
    ("GET", "/api/auth/me"): "user",
    ("PATCH", "/api/auth/me"): "user",
    ("POST", "/api/auth/me/password"): "user",
    ("GET", "/api/auth/sessions"): "user",
    ("DELETE", "/api/auth/sessions/{session_id}"): "owned",
    ("POST", "/api/keys"): "user",
    ("GET", "/api/keys"): "user",
    ("GET", "/api/keys/{key_id}"): "owned",
    ("PATCH", "/api/keys/{key_id}"): "owned",
    ("DELETE", "/api/keys/{key_id}"): "owned",
    ("GET", "/api/agents"): "user",
    ("GET", "/api/agents/{agent_id}"): "user",
    ("POST", "/api/agents"): "user",
    ("PATCH", "/api/agents/{agent_id}"): "owned",
    ("DELETE", "/api/agents/{agent_id}"): "owned",
    ("GET", "/api/chat/models"): "user",
    ("POST", "/api/conversations"): "user",
    ("GET", "/api/conversations"): "user",
    ("POST", "/api/conversations/import"): "user",
    ("GET", "/api/conversations/{conversation_id}"): "owned",
    ("PATCH", "/api/conversations/{conversation_id}"): "owned",
    ("PUT", "/api/conversations/{conversation_id}/context"): "owned",
    ("DELETE", "/api/conversations/{conversation_id}"): "owned",
    ("GET", "/api/conversations/{conversation_id}/messages"): "owned",
    ("POST", "/api/conversations/{conversation_id}/messages"): "owned",
    ("POST", "/api/conversations/{conversation_id}/messages/{message_id}/edit"): "owned",
    ("POST", "/api/conversations/{conversation_id}/regenerate"): "owned",
    ("GET", "/api/conversations/{conversation_id}/stream"): "owned",
    ("POST", "/api/conversations/{conversation_id}/stop"): "owned",
    ("GET", "/api/conversations/{conversation_id}/export"): "owned",
    ("GET", "/api/usage"): "user",
    ("GET", "/api/spending"): "user",
    ("GET", "/api/prompts"): "user",
    ("POST", "/api/prompts"): "user",
    ("PATCH", "/api/prompts/{prompt_id}"): "owned",
    ("DELETE", "/api/prompts/{prompt_id}"): "owned",
    ("GET", "/api/spending/balance"): "user",
    ("POST", "/api/spending/redeem"): "user",
    ("GET", "/api/usage/totals"): "user",
    ("GET", "/api/usage/export"): "user",
    ("GET", "/api/usage/daily"): "user",
    ("GET", "/api/usage/{log_id}"): "owned",
    ("GET", "/v1/models"): "key",
    ("GET", "/v1/models/{model}"): "key",
    ("POST", "/v1/chat/completions"): "key",
    ("POST", "/v1/completions"): "key",
    ("POST", "/v1/embeddings"): "key",
    ("POST", "/v1/responses"): "key",
    ("GET", "/v1/responses/{response_id}"): "key",
    ("DELETE", "/v1/responses/{response_id}"): "key",
    ("POST", "/v1/messages"): "key",
    ("POST", "/v1/messages/count_tokens"): "key",
}
ADMIN_PREFIX = "/api/admin/"
# Routes that exist only once the SPA is built (`make frontend`).
BUILT_ONLY = {("GET", "/")}
# Valid bodies for the calls made on another account's objects, so that only ownership can refuse.
VALID_BODIES: dict[str, dict[str, Any]] = {
    "/api/keys/{key_id}": {"name": "taken over"},
    "/api/conversations/{conversation_id}": {"title": "taken over"},
    "/api/conversations/{conversation_id}/context": {"system_prompt": "taken over"},
    "/api/conversations/{conversation_id}/messages": {"content": "taken over"},
    "/api/conversations/{conversation_id}/messages/{message_id}/edit": {"content": "taken over"},
}


def _walk(routes: list[BaseRoute]) -> Iterator[tuple[str, str]]:
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from _walk(included.routes)
        elif isinstance(route, APIRoute):
            for method in route.methods:
                yield method, route.path


def route_table(gateway: LiveGateway) -> set[tuple[str, str]]:
    """(method, path) of every route the app serves: FastAPI's and the `/v1` endpoints."""
    routes = set(_walk(gateway.app.routes))
    routes |= set(V1_METHODS)
    # Cross-check with the OpenAPI document (built from the same table): nothing hides from it.
    documented = {
        (method.upper(), path)
        for path, item in gateway.app.openapi()["paths"].items()
        for method in item
    }
    assert documented <= routes, documented - routes
    return routes


def decision(method: str, path: str) -> Access | None:
    if path.startswith(ADMIN_PREFIX):
        return "admin"
    return DECISIONS.get((method, path))


def test_every_route_has_an_access_decision(gateway: LiveGateway) -> None:
    routes = route_table(gateway)
    undecided = sorted(r for r in routes if decision(*r) is None)
    assert undecided == [], f"routes without an access decision in DECISIONS: {undecided}"
    stale = sorted(set(DECISIONS) - routes - BUILT_ONLY)
    assert stale == [], f"decisions for routes that no longer exist: {stale}"
    assert len(routes) > 90


class Callers:
    """Accounts, sessions and keys for the matrix, with objects owned by `owner`."""

    def __init__(self, gateway: LiveGateway, mock: MockServer) -> None:
        self.gateway = gateway
        gateway.create_channel(base_url=mock.base_url())
        self.admin = gateway.admin
        self.owner = self._account("owner-user")
        self.other = self._account("other-user")
        disabled = self._account("disabled-user")
        self.disabled_key = self._key(disabled, "k")
        self.key_without_model = self._key(self.owner, "narrow", models=["some-other-model"])
        self.revoked_key = self._key(self.owner, "revoked")
        revoked_id = self._key_id(self.owner, "revoked")
        assert self._http("DELETE", f"/api/keys/{revoked_id}", self.owner).status_code == 204
        self.expired_key = self._key(self.owner, "expired")
        self._expire(self._key_id(self.owner, "expired"))
        self.owner_key = self._key(self.owner, "main")
        # The owner's objects, for "another account's object".
        self.ids = self._owned_objects()
        # Disabled after its session was issued: the session must stop working at once.
        self.disabled = disabled
        user_id = self._http("GET", "/api/auth/me", disabled).json()["id"]
        patched = self._http(
            "PATCH", f"/api/admin/users/{user_id}", self.admin, json={"status": "disabled"}
        )
        assert patched.status_code == 200, patched.text

    def _http(
        self, method: str, path: str, headers: dict[str, str] | None, **kwargs: Any
    ) -> httpx.Response:
        return self.gateway.http.request(method, path, headers=headers or {}, **kwargs)

    def _account(self, name: str) -> dict[str, str]:
        password = f"{name} password"
        created = self._http(
            "POST", "/api/admin/users", self.admin, json={"username": name, "password": password}
        )
        assert created.status_code == 201, created.text
        return self.login(name)

    def login(self, name: str) -> dict[str, str]:
        login = self._http(
            "POST", "/api/auth/login", None, json={"username": name, "password": f"{name} password"}
        )
        assert login.status_code == 200, login.text
        return {"Authorization": f"Bearer {login.json()['access_token']}"}

    def _key(self, account: dict[str, str], name: str, **fields: Any) -> str:
        created = self._http("POST", "/api/keys", account, json={"name": name, **fields})
        assert created.status_code == 201, created.text
        return str(created.json()["key"])

    def _key_id(self, account: dict[str, str], name: str) -> int:
        keys = self._http("GET", "/api/keys", account).json()["items"]
        return int(next(k["id"] for k in keys if k["name"] == name))

    def _expire(self, key_id: int) -> None:
        async def expire() -> None:
            async with self.gateway.ctx.sessionmaker() as db:
                row = await db.get(ApiKey, key_id)
                assert row is not None
                row.expires_at = utcnow() - timedelta(seconds=1)
                await db.commit()

        self.gateway.run(expire)

    def _owned_objects(self) -> dict[str, int]:
        conversation = self._http(
            "POST", "/api/conversations", self.owner, json={"model": "mock-gpt", "title": "mine"}
        ).json()
        with self.gateway.http.stream(
            "POST",
            f"/api/conversations/{conversation['id']}/messages",
            json={"content": "hello"},
            headers=self.owner,
        ) as reply:
            assert reply.status_code == 200
            reply.read()
        messages = self._http(
            "GET", f"/api/conversations/{conversation['id']}/messages", self.owner
        ).json()["items"]
        called = self._http(
            "POST",
            "/v1/chat/completions",
            {"Authorization": f"Bearer {self.owner_key}"},
            json={"model": "mock-gpt", "messages": [{"role": "user", "content": "x"}]},
        )
        assert called.status_code == 200
        self.gateway.wait_for_logs(2)
        usage = self._http("GET", "/api/usage", self.owner).json()["items"]
        sessions = self._http("GET", "/api/auth/sessions", self.owner).json()
        session_items = sessions["items"] if isinstance(sessions, dict) else sessions
        return {
            "conversation_id": conversation["id"],
            "message_id": messages[0]["id"],
            "key_id": self._key_id(self.owner, "main"),
            "log_id": usage[0]["id"],
            "session_id": session_items[0]["id"],
            "agent_id": MISSING,
        }


@pytest.fixture
def callers(gateway: LiveGateway, mock_upstream: MockServer) -> Callers:
    return Callers(gateway, mock_upstream)


def fill(path: str, ids: dict[str, int] | None) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name == "key" and path.startswith("/api/admin/settings"):
            return "no_such_setting"
        return str((ids or {}).get(name, MISSING))

    return re.sub(r"\{(\w+)\}", value, path)


def call(
    callers: Callers,
    method: str,
    path: str,
    headers: dict[str, str] | None,
    body: dict[str, Any] | None = None,
) -> httpx.Response:
    kwargs: dict[str, Any] = {"timeout": 15}
    if method in ("POST", "PUT", "PATCH"):
        kwargs["json"] = body or {}
    return callers.gateway.http.request(method, path, headers=headers or {}, **kwargs)


def _routes(gateway_routes: set[tuple[str, str]], *kinds: Access) -> list[tuple[str, str]]:
    return sorted(r for r in gateway_routes if decision(*r) in kinds)


def test_the_access_matrix(callers: Callers) -> None:
    gateway = callers.gateway
    routes = route_table(gateway)
    owner_key = {"Authorization": f"Bearer {callers.owner_key}"}
    failures: list[str] = []

    def expect(
        who: str, method: str, path: str, response: httpx.Response, allowed: set[int] | None
    ) -> None:
        status = response.status_code
        if status >= 500 or (allowed is not None and status not in allowed):
            failures.append(f"{who:>10} {method} {path} → {status} {response.text[:120]}")
        elif allowed is None and status in (401, 403):
            failures.append(f"{who:>10} {method} {path} → {status}, expected to be let in")

    for method, template in sorted(routes):
        access = decision(method, template)
        if access == "key":
            continue
        path = fill(template, None)
        # Logout ends the session it is called with: it gets a fresh one.
        user = callers.login("owner-user") if template == "/api/auth/logout" else callers.owner
        anonymous = call(callers, method, path, None)
        disabled = call(callers, method, path, callers.disabled)
        as_key = call(callers, method, path, owner_key)
        as_user = call(callers, method, path, user)
        if access == "public":
            expect("anonymous", method, path, anonymous, None)
            continue
        expect("anonymous", method, path, anonymous, {401})
        expect("disabled", method, path, disabled, {401})
        expect("api key", method, path, as_key, {401})
        if access == "admin":
            expect("user", method, path, as_user, {403})
            expect("admin", method, path, call(callers, method, path, callers.admin), None)
            continue
        expect("user", method, path, as_user, None)
        if access == "owned":
            theirs = fill(template, callers.ids)
            body = VALID_BODIES.get(template) if method != "GET" else None
            refused = call(callers, method, theirs, callers.other, body)
            expect("other", method, theirs, refused, {404})
    assert failures == [], "\n" + "\n".join(failures)

    # Nothing another account did touched the owner's objects.
    ids = callers.ids
    conversation = gateway.http.get(
        f"/api/conversations/{ids['conversation_id']}", headers=callers.owner
    )
    assert conversation.status_code == 200
    assert conversation.json()["title"] == "mine"
    assert conversation.json()["system_prompt"] != "taken over"
    messages = gateway.http.get(
        f"/api/conversations/{ids['conversation_id']}/messages", headers=callers.owner
    ).json()["items"]
    assert len(messages) == 2
    assert all(m["content"] != "taken over" for m in messages)
    assert gateway.http.get(f"/api/keys/{ids['key_id']}", headers=callers.owner).status_code == 200


V1_METHODS = sorted(
    (method, path) for path, (methods, _h) in V1_ROUTES.items() for method in methods.split(", ")
)


@pytest.mark.parametrize(("method", "path"), V1_METHODS)
def test_v1_callers(callers: Callers, method: str, path: str) -> None:
    body: dict[str, Any] = {"model": "mock-gpt"}
    body |= {
        "/v1/chat/completions": {"messages": [{"role": "user", "content": "x"}]},
        "/v1/completions": {"prompt": "x"},
        "/v1/embeddings": {"input": "x"},
        "/v1/responses": {"input": "x"},
        "/v1/messages": {"max_tokens": 8, "messages": [{"role": "user", "content": "x"}]},
        "/v1/messages/count_tokens": {"messages": [{"role": "user", "content": "x"}]},
    }.get(path, {})
    anthropic = path.startswith("/v1/messages")  # Anthropic's envelope: a type, no code
    url = path.replace("{model}", "mock-gpt")
    if "{response_id}" in path:  # one of the owner's own kept responses
        kept = callers.gateway.http.post(
            "/v1/responses",
            json={"model": "mock-gpt", "input": "keep this"},
            headers={"Authorization": f"Bearer {callers.owner_key}"},
        )
        url = path.replace("{response_id}", kept.json()["id"])

    def send(token: str | None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return callers.gateway.http.request(
            method, url, headers=headers, json=body if method == "POST" else None
        )

    for who, token, code in (
        ("anonymous", None, "missing_api_key"),
        ("revoked", callers.revoked_key, "api_key_revoked"),
        ("expired", callers.expired_key, "api_key_expired"),
        ("disabled user", callers.disabled_key, "account_disabled"),
        ("not a key", "sk-not-a-real-key-at-all", "invalid_api_key"),
    ):
        refused = send(token)
        assert refused.status_code == 401, (who, refused.text)
        error = refused.json()["error"]
        assert error["type" if anthropic else "code"] == (
            "authentication_error" if anthropic else code
        ), who
    assert send(callers.owner_key).status_code == 200
    narrow = send(callers.key_without_model)
    if path.startswith("/v1/responses/"):
        # Kept responses are the user's: any of their keys reaches them (the owner's DELETE above
        # already removed this one).
        assert narrow.status_code == (200 if method == "GET" else 404), narrow.text
    elif path == "/v1/models":
        assert narrow.status_code == 200
        assert [m["id"] for m in narrow.json()["data"]] == []
    elif anthropic:
        assert narrow.status_code == 403, narrow.text
        assert narrow.json()["error"]["type"] == "permission_error"
    else:
        assert narrow.status_code in (403, 404), narrow.text
        assert narrow.json()["error"]["code"] in ("model_not_allowed", "model_not_found")
