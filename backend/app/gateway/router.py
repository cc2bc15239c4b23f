"""`/v1`: the OpenAI-compatible API."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request
from starlette.responses import Response

from app.core.deps import ClientIP, ContextDep
from app.gateway import relay
from app.gateway.auth import authenticate
from app.gateway.service import Caller

router = APIRouter(prefix="/v1", tags=["openai"])

CHAT_BODY_SCHEMA: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["model", "messages"],
                    "properties": {
                        "model": {"type": "string"},
                        "messages": {"type": "array", "items": {"type": "object"}},
                        "stream": {"type": "boolean"},
                        "stream_options": {"type": "object"},
                    },
                    "additionalProperties": True,
                }
            }
        },
    }
}


async def get_caller(
    ctx: ContextDep, authorization: Annotated[str | None, Header()] = None
) -> Caller:
    return await authenticate(
        authorization,
        cache=ctx.api_key_cache,
        sessionmaker=ctx.sessionmaker,
        tokens=ctx.tokens,
    )


CallerDep = Annotated[Caller, Depends(get_caller)]


@router.get("/models")
async def list_models(ctx: ContextDep, caller: CallerDep) -> dict[str, Any]:
    """The models this caller may use, in the OpenAI list format."""
    models = await ctx.gateway.models_for(caller)
    return {
        "object": "list",
        "data": [
            {"id": model, "object": "model", "created": created, "owned_by": "ai-chat-gateway"}
            for model, created in models
        ],
    }


@router.post("/chat/completions", openapi_extra=CHAT_BODY_SCHEMA)
async def chat_completions(
    request: Request, ctx: ContextDep, caller: CallerDep, client_ip: ClientIP
) -> Response:
    """OpenAI chat completions, streamed (SSE) or not. Unknown OpenAI fields pass through."""
    return await relay.chat_completions(
        gateway=ctx.gateway,
        submit=ctx.call_logs.submit,
        caller=caller,
        raw=await request.body(),
        request_id=request.scope["state"]["request_id"],
        client_ip=client_ip,
        receive=request.receive,
        max_choices=ctx.settings.gateway.max_choices,
    )
