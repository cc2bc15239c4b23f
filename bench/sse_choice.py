"""Does the web chat's event stream need sse-starlette? CPU per event, measured.

Serves the same events two ways — pre-framed bytes in a StreamingResponse (what the chat does:
`conversations/replay.py`) and sse-starlette's EventSourceResponse — and reads the server
process's CPU time around each stream. sse-starlette is not a dependency, so run it with uv:

    .tools/bin/uv run --no-project --with sse-starlette --with uvicorn --with httpx \\
        --with orjson python bench/sse_choice.py

Result and decision: bench/RESULTS.md ("Chat event stream").
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time

import httpx
import orjson

N = int(os.environ.get("EVENTS", "20000"))
PAYLOAD = {"content": "词" * 8}


def make_app():  # type: ignore[no-untyped-def]
    from sse_starlette.sse import EventSourceResponse
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse, StreamingResponse
    from starlette.routing import Route

    async def framed(_request):  # type: ignore[no-untyped-def]
        async def frames():  # type: ignore[no-untyped-def]
            for i in range(N):
                data = orjson.dumps(PAYLOAD)
                yield b"id: r:" + str(i).encode() + b"\nevent: delta\ndata: " + data + b"\n\n"

        return StreamingResponse(frames(), media_type="text/event-stream")

    async def library(_request):  # type: ignore[no-untyped-def]
        async def events():  # type: ignore[no-untyped-def]
            for i in range(N):
                yield {"id": f"r:{i}", "event": "delta", "data": orjson.dumps(PAYLOAD).decode()}

        return EventSourceResponse(events(), ping=15)

    async def cpu(_request):  # type: ignore[no-untyped-def]
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return PlainTextResponse(str(usage.ru_utime + usage.ru_stime))

    return Starlette(
        routes=[Route("/framed", framed), Route("/sse-starlette", library), Route("/cpu", cpu)]
    )


def main() -> None:
    port = 18765
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "sse_choice:make_app",
            "--factory",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        cwd=os.path.dirname(os.path.abspath(__file__)),
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(50):
            try:
                httpx.get(base + "/cpu")
                break
            except httpx.TransportError:
                time.sleep(0.1)
        results: dict[str, list[float]] = {}
        for _ in range(3):
            for path in ("/framed", "/sse-starlette"):
                before = float(httpx.get(base + "/cpu").text)
                with httpx.stream("GET", base + path, timeout=60) as response:
                    count = sum(1 for line in response.iter_lines() if line.startswith("data:"))
                after = float(httpx.get(base + "/cpu").text)
                results.setdefault(path, []).append((after - before) / count * 1e6)
        for path, values in results.items():
            print(f"{path:16} CPU µs per event, best of 3: {min(values):.1f}")
    finally:
        server.terminate()


if __name__ == "__main__":
    main()
