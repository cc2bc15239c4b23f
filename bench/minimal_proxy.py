"""The practical floor for a Python relay: aiohttp server + one pooled aiohttp client, nothing else.

No auth, no routing, no limits, no logging, no JSON parsing: bytes in, bytes out, chunks relayed as
they arrive. It is what the gateway is measured against (built on the stack measured fastest here),
not a straw man.

    python bench/minimal_proxy.py --port 9300 --upstream http://127.0.0.1:9100
"""

from __future__ import annotations

import argparse
import gc

import aiohttp
from aiohttp import web

def tune_gc() -> None:
    """The same collector settings as the gateway (app/core/gc_policy.py), so neither is favoured."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, *gc.get_threshold()[1:])


HOP_HEADERS = {"content-type": "application/json", "authorization": "Bearer sk-bench"}


def build(upstream: str) -> web.Application:
    app = web.Application()
    session: dict[str, aiohttp.ClientSession] = {}

    async def startup(_app: web.Application) -> None:
        tune_gc()
        session["s"] = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0), timeout=aiohttp.ClientTimeout(total=None)
        )

    async def cleanup(_app: web.Application) -> None:
        await session["s"].close()

    async def relay(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        async with session["s"].post(
            upstream + request.path, data=body, headers=HOP_HEADERS
        ) as upstream_response:
            content_type = upstream_response.headers.get("Content-Type", "")
            if "text/event-stream" not in content_type:
                payload = await upstream_response.read()
                return web.Response(
                    body=payload, status=upstream_response.status, content_type="application/json"
                )
            response = web.StreamResponse(
                status=upstream_response.status,
                headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"},
            )
            await response.prepare(request)
            async for chunk in upstream_response.content.iter_any():
                await response.write(chunk)
            await response.write_eof()
            return response

    app.router.add_post("/{tail:.*}", relay)
    app.on_startup.append(startup)
    app.on_cleanup.append(cleanup)
    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9300)
    parser.add_argument("--upstream", required=True, help="e.g. http://127.0.0.1:9100")
    args = parser.parse_args()
    import uvloop

    web.run_app(
        build(args.upstream.rstrip("/")),
        host=args.host,
        port=args.port,
        access_log=None,
        print=None,
        loop=uvloop.new_event_loop(),
    )


if __name__ == "__main__":
    main()
