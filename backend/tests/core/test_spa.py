from __future__ import annotations

from pathlib import Path

import httpx
from fastapi import FastAPI

from app.core.security_headers import SecurityHeaders
from app.core.spa import mount_spa


def _app(tmp_path: Path, built: bool) -> FastAPI:
    app = FastAPI()

    @app.get("/api/ping")
    async def ping() -> dict[str, str]:
        return {"pong": "yes"}

    if built:
        (tmp_path / "assets").mkdir()
        (tmp_path / "index.html").write_text("<!doctype html><div id=app></div>")
        (tmp_path / "assets" / "main.js").write_text("console.log('hi')")
    mount_spa(app, SecurityHeaders(), tmp_path)
    return app


async def test_history_fallback_serves_index_for_html_navigation(tmp_path: Path) -> None:
    transport = httpx.ASGITransport(app=_app(tmp_path, built=True))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        html = {"Accept": "text/html,application/xhtml+xml"}
        assert "id=app" in (await client.get("/", headers=html)).text
        deep = await client.get("/chat/42", headers=html)
        assert deep.status_code == 200
        assert "id=app" in deep.text
        assert deep.headers["cache-control"] == "no-cache"
        assert (await client.get("/", headers=html)).headers["cache-control"] == "no-cache"
        asset = await client.get("/assets/main.js")
        assert asset.status_code == 200
        assert "console.log" in asset.text
        assert asset.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert (await client.get("/assets/missing.js")).status_code == 404
        assert (await client.get("/api/ping")).json() == {"pong": "yes"}
        # API paths never fall back to the SPA, even for a browser.
        assert (await client.get("/api/nothing", headers=html)).status_code == 404
        missing = await client.get("/v1/nothing", headers=html)
        assert missing.status_code == 404
        assert missing.headers["content-type"].startswith("application/json")


async def test_placeholder_page_before_the_spa_is_built(tmp_path: Path) -> None:
    transport = httpx.ASGITransport(app=_app(tmp_path, built=False))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        page = await client.get("/")
        assert page.status_code == 200
        assert "make run" in page.text
