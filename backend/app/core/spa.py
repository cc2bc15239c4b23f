"""Serves the built Vue SPA from `app/frontend/` on the same port as the API.

Files are served as they are; any other `GET` that accepts HTML and is not under `/api`, `/v1` or the
API docs gets `index.html` (history-mode routing). Before the SPA is built, `/` explains how to build it.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from starlette.exceptions import HTTPException
from starlette.responses import HTMLResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from app.core.security_headers import SecurityHeaders

FRONTEND_DIR = Path(__file__).resolve().parents[1] / "frontend"
API_PREFIXES = ("/api/", "/v1/", "/docs", "/openapi.json", "/healthz", "/readyz", "/metrics")

NOT_BUILT_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>AI Chat Gateway</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 40rem; margin: 4rem auto; line-height: 1.5">
<h1>AI Chat Gateway</h1>
<p>The API is running. The web app has not been built yet: run <code>make run</code> (it builds
the SPA) or <code>make frontend</code>.</p>
<p>API documentation: <a href="/docs">/docs</a></p>
</body></html>
"""


DOCS_ASSETS = "/docs-assets"  # Swagger UI's files, copied into the SPA build from npm


def install_docs(app: FastAPI, headers: SecurityHeaders) -> None:
    """Swagger UI at /docs, its script and styles from this server (no CDN)."""
    page = get_swagger_ui_html(
        openapi_url=app.openapi_url or "/openapi.json",
        title=f"{app.title} API",
        swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
        swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
        swagger_favicon_url=f"{DOCS_ASSETS}/favicon-32x32.png",
        swagger_ui_parameters=app.swagger_ui_parameters,
    )
    html = bytes(page.body)
    headers.allow_inline_scripts(html)

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return HTMLResponse(html)


def _wants_html(scope: Scope) -> bool:
    for name, value in scope.get("headers", []):
        if name == b"accept":
            return b"text/html" in value
    return False


def _is_api_path(path: str) -> bool:
    return path in ("/api", "/v1") or path.startswith(API_PREFIXES)


IMMUTABLE = "public, max-age=31536000, immutable"


class SPAStaticFiles(StaticFiles):
    """Vite's hashed files under `assets/` are cached for a year; everything else (index.html
    above all, so a new build is picked up at once) is revalidated on every load."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        try:
            response = await super().get_response(path, scope)
        except HTTPException as exc:
            request_path = scope.get("path", "")
            if (
                exc.status_code == 404
                and scope.get("method") in ("GET", "HEAD")
                and _wants_html(scope)
                and not _is_api_path(request_path)
            ):
                response = await super().get_response("index.html", scope)
                response.headers["Cache-Control"] = "no-cache"
                return response
            raise
        immutable = path.startswith("assets/") and response.status_code in (200, 304)
        response.headers["Cache-Control"] = IMMUTABLE if immutable else "no-cache"
        return response


def mount_spa(app: FastAPI, headers: SecurityHeaders, directory: Path = FRONTEND_DIR) -> None:
    index = directory / "index.html"
    if index.is_file():
        headers.allow_inline_scripts(index.read_bytes())  # the theme set before first paint
        app.mount("/", SPAStaticFiles(directory=directory, html=True), name="spa")
        return

    @app.get("/", include_in_schema=False)
    async def spa_not_built() -> HTMLResponse:
        return HTMLResponse(NOT_BUILT_PAGE)
