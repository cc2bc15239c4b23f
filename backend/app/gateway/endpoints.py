"""`/v1`: the OpenAI-compatible endpoints, served as pure ASGI.

`POST /v1/chat/completions`, `/v1/completions`, `/v1/embeddings`, `GET /v1/models` and
`/v1/models/{model}` are the hot path, so they are answered here, inside the request-context
middleware (request id, client IP, body-size limit still apply) but ahead of FastAPI's routing,
dependency solving and exception middleware — which, profiled under load, cost more CPU per call
than the whole relay. Their OpenAPI description is in `gateway.openapi`. Any other `/v1` path is
an OpenAI-style 404 from here.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.auth.verification import UNVERIFIED_MESSAGE, may_chat
from app.core import cors
from app.core.cors import parse_origins
from app.core.errors import (
    AppError,
    ForbiddenError,
    NotFoundError,
    anthropic_error_body,
    is_anthropic_path,
    is_openai_path,
    openai_error_body,
)
from app.gateway import messages, relay, responses
from app.gateway.anthropic_format import parse_messages_request
from app.gateway.auth import authenticate
from app.gateway.caller import Caller
from app.gateway.context import GatewayContext
from app.gateway.request import (
    ModelRequest,
    parse_chat_request,
    parse_completions_request,
    parse_embeddings_request,
)

logger = logging.getLogger(__name__)
CHAT_PATH = "/v1/chat/completions"
COMPLETIONS_PATH = "/v1/completions"
EMBEDDINGS_PATH = "/v1/embeddings"
MODELS_PATH = "/v1/models"
MODEL_PATH = "/v1/models/{model}"
RESPONSES_PATH = "/v1/responses"
RESPONSE_PATH = "/v1/responses/{response_id}"
MESSAGES_PATH = "/v1/messages"
COUNT_TOKENS_PATH = "/v1/messages/count_tokens"
Handler = Callable[[GatewayContext, Scope, Receive], Awaitable[Response]]
# Model calls: their client address is counted by the call's admission (`ClientGuard`).
MODEL_CALL_PATHS = frozenset(
    {CHAT_PATH, COMPLETIONS_PATH, EMBEDDINGS_PATH, RESPONSES_PATH, MESSAGES_PATH}
)


async def read_body(receive: Receive) -> bytes:
    """The whole request body (the middleware has already bounded its size)."""
    parts: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect
        body = message.get("body", b"")
        if body:
            parts.append(body)
        if not message.get("more_body", False):
            break
    return parts[0] if len(parts) == 1 else b"".join(parts)


@dataclass(frozen=True)
class Plan:
    """How one call's body is read and its answer written (`relay.relay_call`)."""

    parse: Callable[[bytes], ModelRequest]
    stream: relay.StreamFrames = relay.openai_stream
    answer: relay.Answer = relay.openai_answer


# A plan made once the caller and the body are known (e.g. a Responses turn, which looks the
# earlier conversation up).
Planner = Callable[[Caller, bytes], Awaitable[Plan]]


async def _model_call(
    ctx: GatewayContext, scope: Scope, receive: Receive, plan: Plan | Planner
) -> Response:
    state = scope["state"]
    try:
        caller = await _caller(ctx, scope)
        if not may_chat(ctx.runtime.current, is_admin=False, email_verified=caller.confirmed):
            raise ForbiddenError(UNVERIFIED_MESSAGE, code="email_unverified")
    except AppError:
        over = await ctx.guard.count(state["client_ip"])  # refused before its admission
        if over is not None:
            raise over from None
        raise
    try:
        raw = await read_body(receive)
    except ClientDisconnect:
        return relay.abandoned(
            calls=ctx.calls,
            caller=caller,
            request_id=state["request_id"],
            client_ip=state["client_ip"],
        )
    if not isinstance(plan, Plan):
        plan = await plan(caller, raw)
    return await relay.relay_call(
        calls=ctx.calls,
        caller=caller,
        raw=raw,
        parse=plan.parse,
        request_id=state["request_id"],
        client_ip=state["client_ip"],
        receive=receive,
        stream=plan.stream,
        answer=plan.answer,
        count_address=ctx.guard.count,
    )


async def chat_completions(ctx: GatewayContext, scope: Scope, receive: Receive) -> Response:
    choices = ctx.settings.gateway.max_choices
    return await _model_call(
        ctx, scope, receive, Plan(lambda raw: parse_chat_request(raw, max_choices=choices))
    )


async def completions(ctx: GatewayContext, scope: Scope, receive: Receive) -> Response:
    choices = ctx.settings.gateway.max_choices
    return await _model_call(
        ctx, scope, receive, Plan(lambda raw: parse_completions_request(raw, max_choices=choices))
    )


async def embeddings(ctx: GatewayContext, scope: Scope, receive: Receive) -> Response:
    return await _model_call(ctx, scope, receive, Plan(parse_embeddings_request))


async def anthropic_messages(ctx: GatewayContext, scope: Scope, receive: Receive) -> Response:
    betas = [
        value.decode("latin-1") for name, value in scope["headers"] if name == b"anthropic-beta"
    ]
    return await _model_call(
        ctx,
        scope,
        receive,
        Plan(
            lambda raw: parse_messages_request(raw, betas=betas),
            stream=messages.stream,
            answer=messages.answer,
        ),
    )


async def create_response(ctx: GatewayContext, scope: Scope, receive: Receive) -> Response:
    async def plan(caller: Caller, raw: bytes) -> Plan:
        turn = responses.Turn(ctx.sessionmaker, ctx.responses, caller)
        return Plan(await turn.prepare(raw), stream=turn.stream, answer=turn.answer)

    return await _model_call(ctx, scope, receive, plan)


async def stored_response(ctx: GatewayContext, scope: Scope, _receive: Receive) -> Response:
    """`GET` or `DELETE /v1/responses/{id}`: the caller's own kept responses only."""
    caller = await _caller(ctx, scope)
    response_id = scope["path"].rstrip("/")[len(RESPONSES_PATH) + 1 :]
    if scope["method"] == "DELETE":
        return await responses.remove(ctx.sessionmaker, response_id, caller)
    return await responses.retrieve(ctx.sessionmaker, response_id, caller)


async def anthropic_count_tokens(ctx: GatewayContext, scope: Scope, receive: Receive) -> Response:
    caller = await _caller(ctx, scope)
    return messages.count_tokens(await read_body(receive), caller.may_use)


def _model_object(model: str, created: int) -> dict[str, Any]:
    return {"id": model, "object": "model", "created": created, "owned_by": "ai-chat-gateway"}


async def list_models(ctx: GatewayContext, scope: Scope, _receive: Receive) -> Response:
    models = await ctx.gateway.models_for(await _caller(ctx, scope))
    return JSONResponse(
        {"object": "list", "data": [_model_object(model, created) for model, created in models]}
    )


async def retrieve_model(ctx: GatewayContext, scope: Scope, _receive: Receive) -> Response:
    """`GET /v1/models/{model}`: one model the caller may use (a name may hold slashes)."""
    wanted = scope["path"].rstrip("/")[len(MODELS_PATH) + 1 :]
    for model, created in await ctx.gateway.models_for(await _caller(ctx, scope)):
        if model == wanted:
            return JSONResponse(_model_object(model, created))
    raise NotFoundError(
        f"The model '{wanted[:200]}' does not exist or you do not have access to it",
        code="model_not_found",
        param="model",
    )


def _authorization(scope: Scope) -> str | None:
    """The bearer credentials, or an `x-api-key` (Anthropic's SDK) as one."""
    api_key = None
    for name, value in scope["headers"]:
        if name == b"authorization":
            return str(value.decode("latin-1"))
        if name == b"x-api-key":
            api_key = value.decode("latin-1")
    return f"Bearer {api_key}" if api_key else None


async def _caller(ctx: GatewayContext, scope: Scope) -> Caller:
    return await authenticate(
        _authorization(scope),
        cache=ctx.api_key_cache,
        sessionmaker=ctx.sessionmaker,
        tokens=ctx.tokens,
    )


ROUTES: dict[str, tuple[str, Handler]] = {
    CHAT_PATH: ("POST", chat_completions),
    COMPLETIONS_PATH: ("POST", completions),
    EMBEDDINGS_PATH: ("POST", embeddings),
    MODELS_PATH: ("GET", list_models),
    MODEL_PATH: ("GET", retrieve_model),  # matched by prefix (`route_for`)
    RESPONSES_PATH: ("POST", create_response),
    RESPONSE_PATH: ("GET, DELETE", stored_response),  # matched by prefix (`route_for`)
    MESSAGES_PATH: ("POST", anthropic_messages),
    COUNT_TOKENS_PATH: ("POST", anthropic_count_tokens),
}


def route_for(path: str) -> tuple[str, Handler] | None:
    """The route serving `path` (a trailing slash ignored; `/v1/models/<name>` by prefix)."""
    if path.endswith("/"):
        path = path.rstrip("/")
    route = ROUTES.get(path)
    if route is None and path.startswith(MODELS_PATH + "/"):
        return ROUTES[MODEL_PATH]
    if route is None and path.startswith(RESPONSES_PATH + "/") and path.count("/") == 3:
        return ROUTES[RESPONSE_PATH]
    return route


def _with_headers(send: Send, extra: list[tuple[bytes, bytes]]) -> Send:
    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            message["headers"] = [*message.get("headers", ()), *extra]
        await send(message)

    return sending


async def _preflight(
    scope: Scope, receive: Receive, send: Send, allow: bytes | None, asked_headers: bytes | None
) -> None:
    if allow is None:
        refused = error_response(
            ForbiddenError("This origin may not call the API from a browser", code="cors_origin")
        )
        await refused(scope, receive, send)
        return
    headers = [(b"content-length", b"0"), *cors.preflight_headers(allow, asked_headers)]
    await send({"type": "http.response.start", "status": 204, "headers": headers})
    await send({"type": "http.response.body", "body": b""})


def error_response(error: AppError, path: str = "", status: int | None = None) -> Response:
    """`error` in the envelope its caller's SDK expects (Anthropic's on its paths)."""
    status = status or error.status_code
    if is_anthropic_path(path):
        body = anthropic_error_body(status, error.message)
    else:
        body = openai_error_body(status, error.message, error.code, error.param)
    return JSONResponse(body, status_code=status, headers=error.headers)


def _cors_request(scope: Scope) -> tuple[bytes | None, bytes | None, bytes | None]:
    """(Origin, Access-Control-Request-Method, Access-Control-Request-Headers)."""
    origin = method = headers = None
    for name, value in scope["headers"]:
        if name == b"origin":
            origin = value
        elif name == b"access-control-request-method":
            method = value
        elif name == b"access-control-request-headers":
            headers = value
    return origin, method, headers


class OpenAIEndpoints:
    """Serves the whole `/v1` namespace itself (errors included, in OpenAI's envelope: an unknown
    path is a 404, a wrong method a 405; a trailing slash is ignored), with CORS when an admin
    allows origins; everything else goes on to `app`."""

    def __init__(self, app: ASGIApp, ctx: GatewayContext) -> None:
        self.app = app
        self.ctx = ctx

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_openai_path(scope["path"]):
            await self.app(scope, receive, send)
            return
        origins = parse_origins(self.ctx.runtime.current.cors_allowed_origins)
        if origins:
            origin, asked_method, asked_headers = _cors_request(scope)
            allow = cors.allowed_origin(origins, origin)
            if scope["method"] == "OPTIONS" and asked_method is not None:
                await _preflight(scope, receive, send, allow, asked_headers)
                return
            if allow is not None:
                send = _with_headers(send, cors.response_headers(allow))
        path = scope["path"]
        route = route_for(path)
        if route is None:
            unknown = error_response(
                AppError(f"Invalid URL ({scope['method']} {path})", code="unknown_url"), status=404
            )
            await unknown(scope, receive, send)
            return
        method, handler = route
        if scope["method"] not in method.split(", "):
            response: Response = error_response(
                AppError(f"Use {method} for this endpoint", code="method_not_allowed"), path, 405
            )
            response.headers["Allow"] = method
            await response(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = True
            await send(message)

        try:
            try:
                response = await handler(self.ctx, scope, receive)
            except AppError as error:
                response = error_response(error, path)
            except HTTPException as error:  # e.g. the body-size limit
                response = error_response(
                    AppError(
                        str(error.detail),
                        code="payload_too_large" if error.status_code == 413 else "http_error",
                    ),
                    path,
                    error.status_code,
                )
            await response(scope, receive, tracking_send)
        except Exception:
            logger.exception(
                "Unhandled error (request_id=%s)", scope.get("state", {}).get("request_id")
            )
            if not started:
                failure = error_response(
                    AppError("Internal server error", code="internal_error"), path, 500
                )
                await failure(scope, receive, send)
