"""A second reference: the same minimal relay as a Starlette app on uvicorn (httptools + uvloop).

It separates the cost of the server stack (uvicorn vs aiohttp.web) from the gateway's own work.

    python bench/minimal_proxy_uvicorn.py --port 9614 --upstream http://127.0.0.1:9100
"""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from minimal_proxy import tune_gc

HOP_HEADERS = {"content-type": "application/json", "authorization": "Bearer sk-bench"}


def build(upstream: str) -> Starlette:
    holder: dict[str, aiohttp.ClientSession] = {}

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        holder["s"] = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0), timeout=aiohttp.ClientTimeout(total=None)
        )
        tune_gc()
        yield
        await holder["s"].close()

    async def relay(request: Request) -> Response:
        body = await request.body()
        upstream_response = await holder["s"].post(
            upstream + request.url.path, data=body, headers=HOP_HEADERS
        )
        if "text/event-stream" not in upstream_response.headers.get("Content-Type", ""):
            payload = await upstream_response.read()
            upstream_response.release()
            return Response(payload, status_code=upstream_response.status, media_type="application/json")

        async def chunks() -> AsyncIterator[bytes]:
            try:
                async for chunk in upstream_response.content.iter_any():
                    yield chunk
            finally:
                upstream_response.release()

        return StreamingResponse(chunks(), media_type="text/event-stream")

    return Starlette(routes=[Route("/{tail:path}", relay, methods=["POST"])], lifespan=lifespan)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=9614)
    parser.add_argument("--upstream", required=True)
    args = parser.parse_args()
    uvicorn.run(
        build(args.upstream.rstrip("/")),
        host="127.0.0.1",
        port=args.port,
        access_log=False,
        log_level="warning",
        loop="uvloop",
        http="httptools",
    )


if __name__ == "__main__":
    main()
