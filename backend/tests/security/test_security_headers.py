"""Security headers on every kind of response, the pages' Content-Security-Policy, and API docs
served without a CDN."""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from app.core.security_headers import SecurityHeaders
from app.core.spa import mount_spa
from app.main import create_app
from tests.conftest import DatabaseTarget, Harness, make_settings

COMMON = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
}


def _common(response: httpx.Response) -> None:
    for name, value in COMMON.items():
        assert response.headers.get(name) == value, (response.url, name)


def _csp(response: httpx.Response) -> dict[str, str]:
    policy = response.headers["content-security-policy"]
    return {
        part.split(" ", 1)[0]: part.split(" ", 1)[1] if " " in part else ""
        for part in (p.strip() for p in policy.split(";"))
    }


def _inline_hashes(html: str) -> set[str]:
    bodies = re.findall(r"<script(?![^>]*\bsrc=)[^>]*>(.*?)</script>", html, re.S)
    return {
        f"'sha256-{base64.b64encode(hashlib.sha256(b.encode()).digest()).decode()}'" for b in bodies
    }


async def test_json_event_stream_and_error_responses_carry_them(harness: Harness) -> None:
    key = (
        await harness.client.post(
            "/api/keys", json={"name": "k"}, headers=await harness.admin_headers()
        )
    ).json()["key"]
    responses = [
        await harness.client.get("/api/settings/public"),
        await harness.client.get("/api/auth/me"),  # 401
        await harness.client.get("/v1/models", headers={"Authorization": f"Bearer {key}"}),
        await harness.client.post("/v1/chat/completions", content=b"{"),  # 401 envelope
        await harness.client.get("/healthz"),
        await harness.client.post("/api/keys", content=b"x" * (11 * 1024 * 1024)),  # 413
    ]
    for response in responses:
        _common(response)
        policy = _csp(response)
        assert policy["default-src"] == "'none'", response.url
        assert policy["frame-ancestors"] == "'none'"


async def test_the_api_docs_load_swagger_from_this_server_under_a_strict_policy(
    harness: Harness,
) -> None:
    docs = await harness.client.get("/docs")
    assert docs.status_code == 200
    _common(docs)
    for outside in ("cdn.", "jsdelivr", "unpkg", "tiangolo", "https://", "http://"):
        assert outside not in docs.text, outside
    assert "/docs-assets/swagger-ui-bundle.js" in docs.text
    assert "/docs-assets/swagger-ui.css" in docs.text
    policy = _csp(docs)
    scripts = set(policy["script-src"].split())
    assert "'unsafe-inline'" not in scripts
    assert "'unsafe-eval'" not in scripts
    assert _inline_hashes(docs.text) <= scripts, "the page's own inline script may run"
    assert policy["img-src"] == "'self' data: blob:"
    assert policy["frame-ancestors"] == "'none'"
    assert policy["object-src"] == "'none'"


@pytest.mark.parametrize(
    "inline", ["document.documentElement.classList.add('dark')", "console.log('x')"]
)
async def test_the_spa_page_allows_its_own_inline_script_and_nothing_else(
    tmp_path: Path, database: DatabaseTarget, inline: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    built = tmp_path / "spa"
    built.mkdir()
    html = f"<!doctype html><script>{inline}</script><div id=app></div>"
    (built / "index.html").write_text(html)

    def mount_this_build(app: FastAPI, headers: SecurityHeaders) -> None:
        mount_spa(app, headers, built)

    monkeypatch.setattr("app.main.mount_spa", mount_this_build)
    app = create_app(make_settings(tmp_path / "data", database))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        page = await client.get("/chat/1", headers={"Accept": "text/html"})
    assert page.status_code == 200
    assert inline in page.text
    _common(page)
    policy = _csp(page)
    sources = set(policy["script-src"].split())
    assert _inline_hashes(page.text) <= sources
    assert sources - _inline_hashes(page.text) >= {"'self'"}
    other = f"'sha256-{base64.b64encode(hashlib.sha256(b'alert(1)').digest()).decode()}'"
    assert other not in sources
    assert policy["img-src"] == "'self' data: blob:"
    assert policy["connect-src"] == "'self'"


async def test_a_revalidated_page_keeps_its_policy(
    tmp_path: Path, database: DatabaseTarget, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 304 carries no policy of its own: browsers put a 304's headers on the cached page, and a
    'nothing allowed' policy there stopped the SPA from starting on the second visit."""
    built = tmp_path / "spa"
    built.mkdir()
    (built / "index.html").write_text("<!doctype html><div id=app></div>")
    monkeypatch.setattr("app.main.mount_spa", lambda app, h: mount_spa(app, h, built))
    app = create_app(make_settings(tmp_path / "data", database))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        first = await client.get("/", headers={"Accept": "text/html"})
        again = await client.get(
            "/", headers={"Accept": "text/html", "If-None-Match": first.headers["etag"]}
        )
    assert again.status_code == 304
    assert "content-security-policy" not in again.headers
    _common(again)
