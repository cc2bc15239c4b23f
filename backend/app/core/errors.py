"""Typed errors raised by services, and the one handler per surface that renders them.

The SPA API (`/api`, everything else) answers `{"detail": …, "code": …}`; the OpenAI-compatible API
(`/v1`) answers the OpenAI envelope `{"error": {"message", "type", "param", "code"}}`. Validation
errors never echo the submitted values (they may be passwords). No stack trace reaches a client.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

logger = logging.getLogger(__name__)

OPENAI_PREFIX = "/v1"


class AppError(Exception):
    status_code = 400
    code = "bad_request"
    default_message = "Bad request"

    def __init__(
        self,
        message: str | None = None,
        *,
        code: str | None = None,
        param: str | None = None,
        headers: Mapping[str, str] | None = None,
        commit: bool = False,
    ) -> None:
        self.message = message or self.default_message
        self.commit = commit
        if code is not None:
            self.code = code
        self.param = param
        self.headers = dict(headers or {})
        super().__init__(self.message)


class BadRequestError(AppError):
    pass


class UnauthorizedError(AppError):
    status_code = 401
    code = "unauthorized"
    default_message = "Not authenticated"

    def __init__(self, message: str | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.headers.setdefault("WWW-Authenticate", "Bearer")


class ForbiddenError(AppError):
    status_code = 403
    code = "forbidden"
    default_message = "You do not have permission to do this"


class NotFoundError(AppError):
    status_code = 404
    code = "not_found"
    default_message = "Not found"


class ConflictError(AppError):
    status_code = 409
    code = "conflict"
    default_message = "Conflict"


class UnprocessableError(AppError):
    """A well-formed request that breaks a rule; rendered like a validation error on `param`."""

    status_code = 422
    code = "invalid"
    default_message = "Invalid value"


class RateLimitedError(AppError):
    status_code = 429
    code = "rate_limited"
    default_message = "Too many requests"

    def __init__(self, message: str | None = None, *, retry_after: int, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = max(1, retry_after)
        self.headers.setdefault("Retry-After", str(self.retry_after))


class ServiceUnavailableError(AppError):
    status_code = 503
    code = "unavailable"
    default_message = "Service unavailable"


_OPENAI_TYPES = {
    401: "authentication_error",
    403: "permission_error",
    404: "invalid_request_error",
    429: "rate_limit_error",
}


def is_openai_path(path: str) -> bool:
    return path == OPENAI_PREFIX or path.startswith(OPENAI_PREFIX + "/")


# Paths answered in Anthropic's error envelope (its SDK reads that one).
ANTHROPIC_PATHS = frozenset({"/v1/messages", "/v1/messages/count_tokens"})
_ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "request_too_large",
    429: "rate_limit_error",
    503: "overloaded_error",
    529: "overloaded_error",
}


def is_anthropic_path(path: str) -> bool:
    return path.rstrip("/") in ANTHROPIC_PATHS


def anthropic_error_body(status: int, message: str) -> dict[str, Any]:
    kind = _ANTHROPIC_TYPES.get(status) or (
        "api_error" if status >= 500 else "invalid_request_error"
    )
    return {"type": "error", "error": {"type": kind, "message": message}}


def openai_error_body(
    status: int, message: str, code: str | None, param: str | None = None
) -> dict[str, Any]:
    error_type = _OPENAI_TYPES.get(status) or (
        "api_error" if status >= 500 else "invalid_request_error"
    )
    return {"error": {"message": message, "type": error_type, "param": param, "code": code}}


def _respond(
    request: Request,
    status: int,
    message: str,
    code: str,
    *,
    param: str | None = None,
    detail: Any = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    if is_openai_path(request.scope.get("path", "")):
        body = openai_error_body(status, message, code, param)
    else:
        body = {"detail": detail if detail is not None else message, "code": code}
    return JSONResponse(body, status_code=status, headers=dict(headers or {}))


def _clean_validation_errors(errors: Sequence[Any]) -> list[dict[str, Any]]:
    return [
        {
            "loc": list(err.get("loc", ())),
            "msg": err.get("msg", "Invalid value"),
            "type": err.get("type", "value_error"),
        }
        for err in errors
    ]


def _field_name(loc: Sequence[Any]) -> str | None:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or None


async def _app_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AppError)
    detail: Any = None
    if isinstance(exc, UnprocessableError):  # the same shape as a validation error, always
        where = exc.param.split(".") if exc.param else []
        detail = [{"loc": ["body", *where], "msg": exc.message, "type": exc.code}]
    return _respond(
        request,
        exc.status_code,
        exc.message,
        exc.code,
        param=exc.param,
        detail=detail,
        headers=exc.headers,
    )


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = _clean_validation_errors(exc.errors())
    first = errors[0] if errors else {"loc": [], "msg": "Invalid request"}
    field = _field_name(first["loc"])
    message = f"{field}: {first['msg']}" if field else str(first["msg"])
    return _respond(request, 422, message, "validation_error", param=field, detail=errors)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    message = exc.detail if isinstance(exc.detail, str) else "Request failed"
    codes = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}
    return _respond(
        request,
        exc.status_code,
        message,
        codes.get(exc.status_code, "http_error"),
        headers=exc.headers,
    )


def _database_busy(exc: Exception) -> bool:
    """SQLite gave up waiting for another writer (its busy timeout passed)."""
    return isinstance(exc, OperationalError) and "database is locked" in str(exc.orig)


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    if not _database_busy(exc):
        raise exc  # on to the unexpected-error handler
    # Load, not a fault of the request: say so, with when to try again, instead of a 500.
    request_id = request.scope.get("state", {}).get("request_id")
    statement = " ".join(str(getattr(exc, "statement", "") or "").split())[:160]
    # The statement (never its parameters) tells an operator which write waited too long.
    logger.warning(
        "Database busy; answered 503 (request_id=%s, statement: %s)", request_id, statement
    )
    return _respond(
        request,
        503,
        "The database is busy; try again in a moment",
        "database_busy",
        headers={"Retry-After": "1"},
    )


async def _too_deep(request: Request, exc: Exception) -> JSONResponse:
    """Input nested deeper than Python will follow (a JSON body of thousands of `[`): the
    request's fault, not the server's."""
    message = "The request is nested too deeply"
    detail = [{"loc": ["body"], "msg": message, "type": "too_deep"}]
    return _respond(request, 422, message, "too_deep", detail=detail)


async def _unhandled_error(request: Request, exc: Exception) -> JSONResponse:
    request_id = request.scope.get("state", {}).get("request_id")
    logger.exception("Unhandled error (request_id=%s)", request_id)
    return _respond(request, 500, "Internal server error", "internal_error")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AppError, _app_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(OperationalError, _database_error)
    app.add_exception_handler(RecursionError, _too_deep)
    app.add_exception_handler(Exception, _unhandled_error)
