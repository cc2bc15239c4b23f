"""The last word on an unexpected error in `/api`, the SPA and the docs, after the response.

Starlette's outermost middleware renders an unexpected exception with the app's 500 handler and
then raises it again, for the server to log. uvicorn, seeing an exception after a response was
sent, closes the connection: the client's next request on that keep-alive connection is reset
(and the error is logged twice). This layer, between them, stops that:

- the response was sent whole: the error is already logged and answered, the connection stays;
- nothing was sent yet (the error came from outside the app's handlers): it is logged and
  answered 500 here;
- a response was cut off midway: the connection must close (the client cannot tell the rest is
  missing otherwise), so the error goes on to the server, which closes it.

`/v1` handles its own errors (`gateway/endpoints.py`) and does not pass through here.
"""

from __future__ import annotations

import logging

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

logger = logging.getLogger(__name__)


class UnexpectedErrors:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = complete = False

        async def watching_send(message: Message) -> None:
            nonlocal started, complete
            if message["type"] == "http.response.start":
                started = True
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                complete = True
            await send(message)

        try:
            await self.app(scope, receive, watching_send)
        except Exception:
            if complete:
                return  # answered (and logged) by the app's 500 handler
            if started:
                raise  # cut off midway: the server closes the connection
            logger.exception(
                "Unhandled error (request_id=%s)", scope.get("state", {}).get("request_id")
            )
            response = JSONResponse(
                {"detail": "Internal server error", "code": "internal_error"}, status_code=500
            )
            await response(scope, receive, send)
