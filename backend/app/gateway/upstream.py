"""Talking to upstream providers over the gateway's own pooled HTTP client (`http_client`).

Every problem becomes an `UpstreamError` whose message has the channel key scrubbed out. Redirects
are never followed (the key would travel with them); every connection's address is checked by the
URL guard.
"""

from __future__ import annotations

import asyncio
import email.utils
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from app.core.security import mask_secret
from app.core.timers import Deadline
from app.core.upstream_rules import Rule, Verdict, classify
from app.gateway.http_client import HttpClient, PreparedRequest, Response, ResponseError, prepare
from app.gateway.url_guard import IPAddress, UpstreamAddressError, check_address

ERROR_BODY_LIMIT = 64 * 1024
# A key stored before keys were checked can hold a line break, which no HTTP header may carry.
UNSENDABLE = "the request could not be sent: the channel's key is not a valid header value"
ErrorKind = Literal["connect", "timeout", "status", "protocol", "address", "inband"]


@dataclass(frozen=True)
class Timeouts:
    connect: float
    first_byte: float
    idle: float
    total: float


# What a caller is told when the failure is the gateway's business, not theirs: transport details
# (addresses, connection errors, the HTTP client's own messages) stay in the call log and the
# server log, for admins.
PUBLIC_MESSAGES: dict[ErrorKind, str] = {
    "connect": "The model provider could not be reached",
    "timeout": "The model provider did not answer in time",
    "protocol": "The model provider's answer broke off or could not be read",
    "address": "The model provider is not reachable from this gateway",
}


class UpstreamError(Exception):
    def __init__(
        self,
        kind: ErrorKind,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        code: str | None = None,
        error_type: str | None = None,
        provider_message: str | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message  # everything known (key scrubbed): for the call log and admins
        self.status = status
        self.retry_after = retry_after
        self.code = code
        self.error_type = error_type
        # The provider's own explanation, when it sent a structured one (e.g. "maximum context
        # length is 8192 tokens"): worth passing on to the caller.
        self.provider_message = provider_message

    def public_message(self, upstream_model: str | None = None, model: str | None = None) -> str:
        """What the caller is told: the provider's own words where it gave some (with the name the
        caller used for the model, not the channel's mapped one), else a plain sentence."""
        if self.kind == "inband":
            text = self.message
        elif self.kind == "status":
            text = f"The model provider answered {self.status}"
            if self.provider_message:
                text += f": {self.provider_message}"
        else:
            text = PUBLIC_MESSAGES[self.kind]
        if upstream_model and model and upstream_model != model:
            text = text.replace(upstream_model, model)
        return text

    def verdict(self, rules: tuple[Rule, ...] = ()) -> Verdict:
        """Whose fault, and so what to do: relay it, disable the channel, or try another
        (`app.core.upstream_rules`)."""
        text = f"{self.code or ''} {self.error_type or ''} {self.provider_message or ''}"
        if self.kind == "status" and not self.provider_message:
            text += f" {self.message}"  # an unstructured body: its text is all there is
        return classify(rules, self.status, text)


def scrub(text: str, secret: str) -> str:
    """Remove the key from text an upstream sent (some echo it back in error messages)."""
    if secret and secret in text:
        text = text.replace(secret, mask_secret(secret))
    return text


def parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def error_details(body: bytes) -> tuple[str | None, str | None, str | None]:
    """(message, code, type) from an OpenAI-style error body, or the body's text."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        text = body.decode("utf-8", "replace").strip()
        return (text[:500] or None), None, None
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict):
        code = error.get("code")
        return (
            str(error.get("message") or "")[:1000] or None,
            str(code) if code is not None else None,
            str(error.get("type")) if error.get("type") is not None else None,
        )
    if isinstance(error, str):
        return error[:1000], None, None
    if isinstance(data, dict) and isinstance(data.get("message"), str):
        return data["message"][:1000], None, None
    return None, None, None


def create_client(allow_private: Callable[[], bool]) -> HttpClient:
    return HttpClient(allow_private, keepalive_timeout=30, dns_ttl=60)


def check_literal_address(address: IPAddress | None, allow_private: bool) -> None:
    """An IP-literal host, checked before the call so the refusal has its own kind and message
    (the connector's socket factory would refuse the connection anyway)."""
    if address is None:
        return
    try:
        check_address(address, allow_private=allow_private)
    except UpstreamAddressError as exc:
        raise UpstreamError("address", str(exc)) from None


def prepare_post(url: str, headers: dict[str, str]) -> PreparedRequest | None:
    """A POST encoded once (per channel); None if it cannot be sent (see `UNSENDABLE`)."""
    try:
        return prepare("POST", url, headers)
    except ValueError:
        return None


async def open_post(
    client: HttpClient,
    request: PreparedRequest | None,
    body: bytes,
    connect_timeout: float,
    api_key: str,
) -> Response:
    """POST and return the response once a 200's headers arrive; anything else raises.

    The caller bounds the wait (first-byte timeout); `api_key` is only used to scrub errors.
    """
    if request is None:
        raise UpstreamError("connect", UNSENDABLE)
    try:
        response = await client.send(request, body, connect_timeout=connect_timeout)
    except TimeoutError:
        raise UpstreamError("timeout", "could not connect to upstream in time") from None
    except (ResponseError, OSError) as exc:
        raise UpstreamError("connect", scrub(f"cannot reach upstream: {exc}", api_key)) from None
    if response.status != 200:
        raise await _status_error(response, api_key)
    return response


async def get_json(
    client: HttpClient, url: str, key_headers: dict[str, str], api_key: str, timeouts: Timeouts
) -> Any:
    """GET `url` with the channel's key headers (`api_key` only scrubs errors)."""
    headers = {**key_headers, "Accept": "application/json"}
    response: Response | None = None
    try:
        request = prepare("GET", url, headers)
    except ValueError:
        raise UpstreamError("connect", UNSENDABLE) from None
    try:
        async with asyncio.timeout(timeouts.first_byte):
            response = await client.send(request, connect_timeout=timeouts.connect)
            if response.status != 200:
                raise await _status_error(response, api_key)
            raw = await read_body(response, 16 * 1024 * 1024)
    except TimeoutError:
        raise UpstreamError("timeout", "upstream did not answer in time") from None
    except (ResponseError, OSError) as exc:
        raise UpstreamError("connect", scrub(f"cannot reach upstream: {exc}", api_key)) from None
    finally:
        if response is not None:
            response.close()
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise UpstreamError(
            "protocol", "upstream answered with something that is not JSON"
        ) from None


async def _status_error(response: Response, api_key: str) -> UpstreamError:
    try:
        raw = await response.read(ERROR_BODY_LIMIT)
    except (ResponseError, OSError, TimeoutError):
        raw = b""
    finally:
        response.close()
    message, code, error_type = error_details(raw)
    structured = message is not None and _is_json(raw)
    status = response.status
    if 300 <= status < 400:
        message, structured = "upstream answered with a redirect, which is not followed", False
    return UpstreamError(
        "status",
        scrub(f"upstream returned {status}" + (f": {message}" if message else ""), api_key),
        status=status,
        retry_after=parse_retry_after(response.headers.get("retry-after")),
        code=code,
        error_type=error_type,
        provider_message=scrub(message, api_key) if structured and message else None,
    )


def _is_json(raw: bytes) -> bool:
    try:
        orjson.loads(raw)
    except orjson.JSONDecodeError:
        return False
    return True


async def read_body(response: Response, limit: int) -> bytes:
    declared = response.content_length
    if declared is not None and declared > limit:
        response.close()
        raise UpstreamError("protocol", f"upstream response is larger than {limit} bytes")
    parts: list[bytes] = []
    size = 0
    try:
        async for chunk in response.iter_any():
            size += len(chunk)
            if size > limit:
                response.close()
                raise UpstreamError("protocol", f"upstream response is larger than {limit} bytes")
            parts.append(chunk)
    except (ResponseError, OSError) as exc:
        raise UpstreamError("protocol", f"upstream connection broke: {exc}") from None
    return parts[0] if len(parts) == 1 else b"".join(parts)


async def iter_body(response: Response, idle: float, deadline: float) -> AsyncIterator[bytes]:
    """The response body as it arrives; idle gaps and the total deadline raise `UpstreamError`."""
    loop = asyncio.get_running_loop()
    while True:
        now = loop.time()
        remaining = deadline - now
        if remaining <= 0:
            raise UpstreamError("timeout", "upstream stream exceeded the channel's total timeout")
        wait = min(idle, remaining)
        try:
            async with Deadline(now + wait):
                chunk = await response.readany()
        except TimeoutError:
            if wait < idle:
                raise UpstreamError(
                    "timeout", "upstream stream exceeded the channel's total timeout"
                ) from None
            raise UpstreamError("timeout", f"upstream sent nothing for {idle:g}s") from None
        except (ResponseError, OSError) as exc:
            raise UpstreamError("protocol", f"upstream connection broke: {exc}") from None
        if not chunk:
            return
        yield chunk
