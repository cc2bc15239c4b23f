"""A real OpenAI-compatible fake upstream, for tests, the benchmark and the demo.

Run it:  python -m app.devtools.mock_upstream --port 9100   (or `make mock-upstream PORT=9100`)

It serves `GET /v1/models` and `POST /v1/chat/completions` (stream and non-stream), and the other
formats channels speak: `/v1/completions`, `/v1/embeddings`, `/v1/responses`, Azure deployment
URLs, Anthropic's `/v1/messages` and Gemini's `generateContent`. What it does is
chosen per request, in this order (later wins):

1. a *profile*: requests under `/<profile>/v1/...` use the options stored for that profile
   (`PUT /_mock/profiles/<profile>` with a JSON object, or `--profile name:key=value,...`), so one
   server can play several upstream channels that behave differently;
2. the model name: the presets below, plus options after a `?`, e.g. `mock-gpt?chunks=3&status=503`;
3. the `X-Mock` header, same `key=value&key=value` form (for calling the mock directly).

Options:
  text=…            the answer (default "Hello from the mock upstream.")
  chunks=N          content chunks in a stream (default 8)        interval=S   seconds between chunks
  latency=S         delay before the response starts              stall_before=S  after headers, before chunk 1
  stall_after=N, stall=S   pause S seconds after chunk N
  reasoning=N       N `reasoning_content` chunks first (`reasoning_field=reasoning` to use that name)
  think=1           content starts with inline <think>…</think>
  usage=last|every|never|cached|final   usage in the last chunk (when asked) / in every chunk
                    (cumulative) / never / last, with cached prompt tokens / on the finishing
                    chunk next to its choice, asked or not (as LiteLLM and several providers do)
  status=CODE       answer with this HTTP error; retry_after=S, error_code=…, error_type=…,
                    error_message=… (its text; {model} becomes the requested model)
  drop_after=N      drop the connection after N content chunks
  inband_error_after=N   after N chunks send `data: {"error": …}` inside the 200 stream
  malformed=split|crlf|comments|invalid_json|repeat   SSE framing faults (repeat: one chunk forever)
  tool_call=1       answer with a tool call (when the request has tools)
  require_key=KEY   401 unless `Authorization: Bearer KEY`
  echo_key=1        error messages repeat the Authorization header back (as some providers do)
  redirect=URL      answer 307 with `Location: URL` (a gateway must not follow it)

Presets: mock-gpt (defaults), mock-reasoner (reasoning=4), mock-think (think=1), mock-slow
(chunks=20, interval=0.05), mock-tools (tool_call=1).

Control: `GET /_mock/requests` (what it received, with the Authorization header), `GET /_mock/stats`
(in flight, most at once, total), `DELETE /_mock/requests` (forget both), `PUT/DELETE /_mock/profiles/…`.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import itertools
import struct
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any
from urllib.parse import parse_qsl

import orjson
from aiohttp import web

from app.devtools.loop_thread import LoopThread

PRESETS: dict[str, dict[str, str]] = {
    "mock-gpt": {},
    "mock-reasoner": {"reasoning": "4"},
    "mock-think": {"think": "1"},
    "mock-slow": {"chunks": "20", "interval": "0.05"},
    "mock-tools": {"tool_call": "1"},
}
DEFAULT_TEXT = "Hello from the mock upstream."
INBAND_ERROR = {
    "error": {"message": "mock in-band failure", "type": "server_error", "code": "mock_inband"}
}
REASONING_TEXT = "Let me think step by step."
THINK_TEXT = "The user wants a greeting."


@dataclass(frozen=True)
class Behaviour:
    text: str = DEFAULT_TEXT
    chunks: int = 8
    interval: float = 0.0
    latency: float = 0.0
    stall_before: float = 0.0
    stall_after: int | None = None
    stall: float = 0.0
    reasoning: int = 0
    reasoning_field: str = "reasoning_content"
    think: bool = False
    usage: str = "last"
    status: int = 200
    retry_after: float | None = None
    error_code: str | None = None
    error_type: str | None = None
    drop_after: int | None = None
    inband_error_after: int | None = None
    malformed: str = ""
    tool_call: bool = False
    require_key: str | None = None
    echo_key: bool = False  # error messages repeat the presented key (as some providers do)
    error_message: str | None = None  # the error's text; "{model}" becomes the requested model
    redirect: str | None = None

    def with_options(self, options: Mapping[str, str]) -> Behaviour:
        types = {f.name: f.type for f in fields(self)}
        changes: dict[str, Any] = {}
        for key, raw in options.items():
            kind = types.get(key)
            if kind is None:
                continue
            if "bool" in str(kind):
                changes[key] = raw.lower() in ("1", "true", "yes", "on")
            elif "int" in str(kind):
                changes[key] = int(raw)
            elif "float" in str(kind):
                changes[key] = float(raw)
            else:
                changes[key] = raw
        return replace(self, **changes)


@dataclass
class RecordedRequest:
    id: int
    path: str
    profile: str | None
    model: str | None
    authorization: str | None
    body: Any
    started_at: float
    api_key: str | None = None  # Azure's `api-key` header
    beta: str | None = None  # Anthropic's `anthropic-beta` header
    query: str = ""
    finished: bool = False
    client_closed: bool = False
    chunks_sent: int = 0


@dataclass
class MockState:
    profiles: dict[str, dict[str, str]] = field(default_factory=dict)
    requests: deque[RecordedRequest] = field(default_factory=lambda: deque(maxlen=2000))
    in_flight: int = 0
    max_in_flight: int = 0
    total: int = 0
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def reset(self) -> None:
        self.requests.clear()
        self.max_in_flight = self.in_flight
        self.total = 0

    def chat_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path.endswith("/chat/completions")]


def _split_model(model: str) -> tuple[str, dict[str, str]]:
    name, _, query = model.partition("?")
    return name, dict(parse_qsl(query))


def _count_words(messages: Any) -> int:
    words = 0
    if isinstance(messages, list):
        for message in messages:
            content = message.get("content") if isinstance(message, dict) else None
            if isinstance(content, str):
                words += len(content.split())
            elif isinstance(content, list):
                for part in content:
                    if isinstance(part, dict) and isinstance(part.get("text"), str):
                        words += len(part["text"].split())
    return max(words, 1)


def _content_pieces(text: str, chunks: int) -> list[str]:
    """`chunks` pieces cycling through the words of `text` (none for chunks=0)."""
    words = text.split(" ")
    return [(words[i % len(words)] + (" " if i < chunks - 1 else "")) for i in range(chunks)]


def _sse(payload: Any, newline: bytes = b"\n") -> bytes:
    data = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    return b"data: " + data + newline + newline


class MockUpstream:
    def __init__(self, state: MockState | None = None) -> None:
        self.state = state or MockState()
        self.app = web.Application(client_max_size=64 * 1024 * 1024)
        self.app.router.add_get("/_mock/requests", self._get_requests)
        self.app.router.add_delete("/_mock/requests", self._clear_requests)
        self.app.router.add_get("/_mock/stats", self._get_stats)
        self.app.router.add_put("/_mock/profiles/{profile}", self._put_profile)
        self.app.router.add_delete("/_mock/profiles", self._clear_profiles)
        for prefix in ("", "/{profile}"):
            self.app.router.add_get(prefix + "/v1/models", self._models)
            self.app.router.add_post(prefix + "/v1/chat/completions", self._chat)
            self.app.router.add_post(prefix + "/v1/completions", self._legacy_completions)
            self.app.router.add_post(prefix + "/v1/embeddings", self._embeddings)
            # Google's Gemini API (`…/v1beta/models/<model>:generateContent`).
            self.app.router.add_post(prefix + "/v1beta/models/{target}", self._gemini)
            # OpenAI's Responses API.
            self.app.router.add_post(prefix + "/v1/responses", self._responses)
            # Anthropic's Messages API.
            self.app.router.add_post(prefix + "/v1/messages", self._anthropic_messages)
            # Azure OpenAI's deployment URLs (the deployment names the model).
            azure = prefix + "/openai/deployments/{deployment}"
            self.app.router.add_post(azure + "/chat/completions", self._azure(self._chat))
            self.app.router.add_post(azure + "/completions", self._azure(self._legacy_completions))
            self.app.router.add_post(azure + "/embeddings", self._azure(self._embeddings))
            # Azure's Responses API is not per deployment (the deployment is the body's model).
            self.app.router.add_post(prefix + "/openai/responses", self._azure(self._responses))

    # ── control ──────────────────────────────────────────────────────────────────────────────
    async def _get_requests(self, _request: web.Request) -> web.Response:
        items = [
            {
                "id": r.id,
                "path": r.path,
                "profile": r.profile,
                "model": r.model,
                "authorization": r.authorization,
                "body": r.body,
                "finished": r.finished,
                "client_closed": r.client_closed,
                "chunks_sent": r.chunks_sent,
            }
            for r in self.state.requests
        ]
        return web.json_response(items, dumps=lambda v: orjson.dumps(v).decode())

    async def _clear_requests(self, _request: web.Request) -> web.Response:
        self.state.reset()
        return web.Response(status=204)

    async def _get_stats(self, _request: web.Request) -> web.Response:
        s = self.state
        return web.json_response(
            {"in_flight": s.in_flight, "max_in_flight": s.max_in_flight, "total": s.total}
        )

    async def _put_profile(self, request: web.Request) -> web.Response:
        options = await request.json()
        self.state.profiles[request.match_info["profile"]] = {
            str(k): str(v) for k, v in options.items()
        }
        return web.Response(status=204)

    async def _clear_profiles(self, _request: web.Request) -> web.Response:
        self.state.profiles.clear()
        return web.Response(status=204)

    @staticmethod
    def _azure(
        handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
    ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        """Azure OpenAI in front of `handler`: an `api-version` query and an `api-key` header
        are required, as Azure requires them."""

        async def azure(request: web.Request) -> web.StreamResponse:
            if not request.query.get("api-version"):
                body = {"error": {"code": "404", "message": "Resource not found"}}
                return web.Response(
                    status=404, body=orjson.dumps(body), content_type="application/json"
                )
            if not request.headers.get("api-key"):
                body = {"error": {"code": "401", "message": "Access denied due to missing api-key"}}
                return web.Response(
                    status=401, body=orjson.dumps(body), content_type="application/json"
                )
            return await handler(request)

        return azure

    # ── OpenAI surface ───────────────────────────────────────────────────────────────────────
    def _behaviour(self, request: web.Request, model: str | None) -> Behaviour:
        behaviour = Behaviour()
        profile = request.match_info.get("profile")
        if profile is not None:
            behaviour = behaviour.with_options(self.state.profiles.get(profile, {}))
        if model:
            name, options = _split_model(model)
            behaviour = behaviour.with_options(PRESETS.get(name, {})).with_options(options)
        header = request.headers.get("X-Mock")
        if header:
            behaviour = behaviour.with_options(dict(parse_qsl(header)))
        return behaviour

    def _authorized(self, request: web.Request, behaviour: Behaviour) -> bool:
        return behaviour.require_key is None or (
            request.headers.get("Authorization") == f"Bearer {behaviour.require_key}"
        )

    @staticmethod
    def _error(status: int, behaviour: Behaviour, message: str | None = None) -> web.Response:
        body = {
            "error": {
                "message": message or f"mock upstream error {status}",
                "type": behaviour.error_type
                or ("invalid_request_error" if status < 500 else "server_error"),
                "param": None,
                "code": behaviour.error_code,
            }
        }
        headers = {}
        if behaviour.retry_after is not None:
            headers["Retry-After"] = f"{behaviour.retry_after:g}"
        return web.Response(
            status=status, body=orjson.dumps(body), content_type="application/json", headers=headers
        )

    @staticmethod
    def _redirect(location: str) -> web.Response:
        return web.Response(status=307, headers={"Location": location})

    async def _receive(
        self, request: web.Request, model: str | None = None
    ) -> tuple[Any, str | None, RecordedRequest, Behaviour]:
        """The front of every model endpoint: the body (None if not JSON), the model (from the
        body unless the URL names it), the request recorded and counted, its behaviour."""
        raw = await request.read()
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            body = None
        if model is None and isinstance(body, dict) and isinstance(body.get("model"), str):
            model = body["model"]
        record = self._record(request, model, body)
        self.state.total += 1
        return body, model, record, self._behaviour(request, model)

    def _record(self, request: web.Request, model: Any, body: Any) -> RecordedRequest:
        record = RecordedRequest(
            id=next(self.state._ids),
            path=request.path,
            profile=request.match_info.get("profile"),
            model=model,
            authorization=request.headers.get("Authorization"),
            body=body,
            started_at=time.time(),
            api_key=request.headers.get("api-key"),
            beta=request.headers.get("anthropic-beta"),
            query=request.query_string,
        )
        self.state.requests.append(record)
        return record

    async def _models(self, request: web.Request) -> web.Response:
        self._record(request, None, None).finished = True
        behaviour = self._behaviour(request, None)
        if behaviour.redirect:
            return self._redirect(behaviour.redirect)
        if not self._authorized(request, behaviour):
            return self._error(401, behaviour, "Incorrect API key provided")
        if behaviour.status != 200:
            return self._error(behaviour.status, behaviour)
        data = [
            {"id": name, "object": "model", "created": 1700000000, "owned_by": "mock"}
            for name in PRESETS
        ]
        return web.Response(
            body=orjson.dumps({"object": "list", "data": data}), content_type="application/json"
        )

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        state = self.state
        body, model, record, behaviour = await self._receive(request)
        state.in_flight += 1
        state.max_in_flight = max(state.max_in_flight, state.in_flight)
        try:
            if behaviour.redirect:
                return self._redirect(behaviour.redirect)
            if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
                return self._error(400, behaviour, "messages is required")
            if not self._authorized(request, behaviour):
                return self._error(401, behaviour, "Incorrect API key provided")
            if behaviour.echo_key and behaviour.status != 200:
                return self._error(
                    behaviour.status,
                    behaviour,
                    f"Incorrect API key provided: {request.headers.get('Authorization', '')}",
                )
            if behaviour.latency:
                await asyncio.sleep(behaviour.latency)
            if behaviour.status != 200:
                message = behaviour.error_message
                if message is not None:
                    message = message.replace("{model}", str(model))
                return self._error(behaviour.status, behaviour, message)
            if body.get("stream"):
                return await self._stream(request, body, behaviour, record)
            if behaviour.stall_before:
                await asyncio.sleep(behaviour.stall_before)
            if behaviour.inband_error_after is not None:
                return web.Response(
                    body=orjson.dumps(INBAND_ERROR), content_type="application/json"
                )
            return self._complete(body, behaviour)
        except asyncio.CancelledError:
            record.client_closed = True
            raise
        finally:
            record.finished = True
            state.in_flight -= 1

    async def _accept(
        self, request: web.Request, required: str
    ) -> tuple[dict[str, Any], Behaviour, RecordedRequest, web.StreamResponse | None]:
        """The front of every model endpoint but chat: the body, the behaviour, the record, and
        the error answer (or redirect) the behaviour asks for, if any."""
        body, _model, record, behaviour = await self._receive(request)
        refusal: web.StreamResponse | None = None
        if behaviour.redirect:
            refusal = self._redirect(behaviour.redirect)
        elif not isinstance(body, dict) or body.get(required) in (None, "", []):
            refusal = self._error(400, behaviour, f"{required} is required")
        elif not self._authorized(request, behaviour):
            refusal = self._error(401, behaviour, "Incorrect API key provided")
        elif behaviour.status != 200:
            refusal = self._error(behaviour.status, behaviour, behaviour.error_message)
        if behaviour.latency and refusal is None:
            await asyncio.sleep(behaviour.latency)
        return (body if isinstance(body, dict) else {}), behaviour, record, refusal

    async def _embeddings(self, request: web.Request) -> web.StreamResponse:
        """OpenAI's embeddings: a deterministic vector per input (`dimensions` long, default 8),
        as floats or base64 (little-endian float32), with usage."""
        body, behaviour, record, refusal = await self._accept(request, "input")
        record.finished = True
        if refusal is not None:
            return refusal
        given = body["input"]
        inputs = [given] if isinstance(given, str) or not isinstance(given, list) else given
        if inputs and all(isinstance(item, int) for item in inputs):
            inputs = [inputs]  # one input as token ids
        dimensions = body.get("dimensions") or 8
        data = []
        for index, item in enumerate(inputs):
            seed = sum(map(ord, str(item))) + index
            vector = [((seed * (k + 1)) % 1000) / 1000 for k in range(dimensions)]
            embedding: Any = vector
            if body.get("encoding_format") == "base64":
                embedding = base64.b64encode(struct.pack(f"<{dimensions}f", *vector)).decode()
            data.append({"object": "embedding", "index": index, "embedding": embedding})
        tokens = sum(len(item.split()) if isinstance(item, str) else len(item) for item in inputs)
        payload: dict[str, Any] = {"object": "list", "data": data, "model": body.get("model")}
        if behaviour.usage != "never":
            payload["usage"] = {"prompt_tokens": tokens, "total_tokens": tokens}
        return web.Response(body=orjson.dumps(payload), content_type="application/json")

    async def _legacy_completions(self, request: web.Request) -> web.StreamResponse:
        """OpenAI's legacy text completions, stream and not, with usage."""
        body, behaviour, record, refusal = await self._accept(request, "prompt")
        if refusal is not None:
            record.finished = True
            return refusal
        prompt = body["prompt"]
        prompts = [prompt] if isinstance(prompt, str) else prompt
        prompt_tokens = sum(len(str(item).split()) for item in prompts)
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": behaviour.chunks,
            "total_tokens": prompt_tokens + behaviour.chunks,
        }
        base = {
            "id": f"cmpl-mock-{record.id}",
            "object": "text_completion",
            "created": int(time.time()),
            "model": body.get("model"),
        }
        pieces = _content_pieces(behaviour.text, behaviour.chunks)
        if not body.get("stream"):
            record.finished = True
            choice = {
                "text": "".join(pieces),
                "index": 0,
                "logprobs": None,
                "finish_reason": "stop",
            }
            payload: dict[str, Any] = {**base, "choices": [choice]}
            if behaviour.usage != "never":
                payload["usage"] = usage
            return web.Response(body=orjson.dumps(payload), content_type="application/json")
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        try:
            for index, piece in enumerate(pieces):
                if behaviour.interval and index:
                    await asyncio.sleep(behaviour.interval)
                choice = {"text": piece, "index": 0, "logprobs": None, "finish_reason": None}
                await response.write(_sse({**base, "choices": [choice]}))
                record.chunks_sent += 1
            last = {"text": "", "index": 0, "logprobs": None, "finish_reason": "stop"}
            await response.write(_sse({**base, "choices": [last]}))
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            if include_usage and behaviour.usage != "never":
                await response.write(_sse({**base, "choices": [], "usage": usage}))
            await response.write(b"data: [DONE]\n\n")
            await response.write_eof()
        except asyncio.CancelledError:
            record.client_closed = True
            raise
        finally:
            record.finished = True
        return response

    async def _gemini(self, request: web.Request) -> web.StreamResponse:
        """Gemini's generateContent and streamGenerateContent (`alt=sse`), per its public docs:
        `x-goog-api-key` required; text, thought parts (`reasoning=N`), a function call
        (mock-tools with tools), usage metadata."""
        model, _, action = request.match_info["target"].partition(":")
        body, _model, record, behaviour = await self._receive(request, model)
        record.finished = True

        def error(status: int, name: str, message: str) -> web.Response:
            payload = {"error": {"code": status, "message": message, "status": name}}
            return web.Response(
                status=status, body=orjson.dumps(payload), content_type="application/json"
            )

        if not request.headers.get("x-goog-api-key"):
            return error(403, "PERMISSION_DENIED", "Method doesn't allow unregistered callers")
        if action not in ("generateContent", "streamGenerateContent"):
            return error(404, "NOT_FOUND", f"unknown action {action}")
        if not isinstance(body, dict) or not body.get("contents"):
            return error(400, "INVALID_ARGUMENT", "contents is required")
        if behaviour.status != 200:
            return error(behaviour.status, "UNAVAILABLE", behaviour.error_message or "mock failure")
        pieces = _content_pieces(behaviour.text, behaviour.chunks)
        thoughts = _content_pieces(REASONING_TEXT, behaviour.reasoning)
        use_tool = bool(behaviour.tool_call and body.get("tools"))
        declarations = (body.get("tools") or [{}])[0].get("functionDeclarations") or [{}]
        prompt = sum(
            len(str(part.get("text", "")).split())
            for content in body["contents"]
            for part in content.get("parts") or []
        )
        usage = {
            "promptTokenCount": max(prompt, 1),
            "candidatesTokenCount": behaviour.chunks,
            "totalTokenCount": max(prompt, 1) + behaviour.chunks + behaviour.reasoning,
        }
        if behaviour.reasoning:
            usage["thoughtsTokenCount"] = behaviour.reasoning

        def answer(parts: list[dict[str, Any]], finish: str | None) -> dict[str, Any]:
            candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
            if finish:
                candidate["finishReason"] = finish
            payload: dict[str, Any] = {
                "candidates": [candidate],
                "modelVersion": model,
                "responseId": f"gem-{record.id}",
            }
            if finish:
                payload["usageMetadata"] = usage
            return payload

        call: dict[str, Any] = {
            "functionCall": {"name": declarations[0].get("name"), "args": {"city": "Shanghai"}}
        }
        if action == "generateContent":
            parts: list[dict[str, Any]] = (
                [{"text": "".join(thoughts), "thought": True}] if thoughts else []
            )
            parts.append(call if use_tool else {"text": behaviour.text})
            return web.Response(
                body=orjson.dumps(answer(parts, "STOP")), content_type="application/json"
            )
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        frames: list[list[dict[str, Any]]] = [[{"text": p, "thought": True}] for p in thoughts]
        frames += [[call]] if use_tool else [[{"text": piece}] for piece in pieces]
        for number, parts in enumerate(frames):
            if behaviour.drop_after is not None and number >= behaviour.drop_after:
                if request.transport is not None:
                    request.transport.abort()
                return response
            last = number == len(frames) - 1
            await response.write(
                b"data: " + orjson.dumps(answer(parts, "STOP" if last else None)) + b"\r\n\r\n"
            )
            record.chunks_sent += 1
        await response.write_eof()
        return response

    async def _responses(self, request: web.Request) -> web.StreamResponse:
        """OpenAI's Responses API (its public docs): text, a reasoning summary (`reasoning=N`),
        a function call (mock-tools with function tools), a built-in tool's item for any other
        tool type, usage; streamed as its numbered events. `inband_error_after=N` sends an
        `error` event after N text deltas; `drop_after=N` drops the connection there."""
        body, behaviour, record, refusal = await self._accept(request, "input")
        record.finished = True
        if refusal is not None:
            return refusal
        given = body["input"]
        words = len(given.split()) if isinstance(given, str) else _count_words(given)
        tools = [t for t in body.get("tools") or [] if isinstance(t, dict)]
        function = next((t for t in tools if t.get("type") == "function"), None)
        built_in = next((t for t in tools if t.get("type") != "function"), None)
        use_function = bool(behaviour.tool_call and function)
        pieces = _content_pieces(behaviour.text, behaviour.chunks)
        summary = "".join(_content_pieces(REASONING_TEXT, behaviour.reasoning))
        response_id = f"resp_mock_{record.id}"
        output: list[dict[str, Any]] = []
        if summary:
            output.append({"type": "reasoning", "id": f"rs_mock_{record.id}",
                           "summary": [{"type": "summary_text", "text": summary}]})  # fmt: skip
        if built_in is not None:
            output.append({"type": f"{built_in.get('type')}_call", "id": f"ws_mock_{record.id}",
                           "status": "completed"})  # fmt: skip
        if use_function:
            assert function is not None
            output.append({"type": "function_call", "id": f"fc_mock_{record.id}",
                           "call_id": "call_mock_1", "name": function.get("name"),
                           "arguments": '{"city": "Shanghai"}', "status": "completed"})  # fmt: skip
        else:
            output.append({"type": "message", "id": f"msg_mock_{record.id}", "status": "completed",
                           "role": "assistant", "content": [{"type": "output_text",
                           "text": "".join(pieces), "annotations": []}]})  # fmt: skip
        usage = {
            "input_tokens": words, "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": behaviour.chunks + behaviour.reasoning,
            "output_tokens_details": {"reasoning_tokens": behaviour.reasoning},
            "total_tokens": words + behaviour.chunks + behaviour.reasoning,
        }  # fmt: skip

        def response_object(status: str, items: list[dict[str, Any]]) -> dict[str, Any]:
            return {
                "id": response_id, "object": "response", "created_at": int(time.time()),
                "status": status, "error": None, "incomplete_details": None,
                "instructions": body.get("instructions"), "model": body.get("model"),
                "output": items, "tools": tools, "store": body.get("store", True),
                "usage": usage if status == "completed" else None,
            }  # fmt: skip

        if not body.get("stream"):
            answer = response_object("completed", output)
            return web.Response(body=orjson.dumps(answer), content_type="application/json")
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        sequence = itertools.count()

        async def send(kind: str, **payload: Any) -> None:
            event = {"type": kind, "sequence_number": next(sequence), **payload}
            await response.write(
                b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(event) + b"\n\n"
            )

        await send("response.created", response=response_object("in_progress", []))
        await send("response.in_progress", response=response_object("in_progress", []))
        for index, item in enumerate(output):
            kind = item["type"]
            if kind == "message":
                await send("response.output_item.added", output_index=index,
                           item={**item, "content": [], "status": "in_progress"})  # fmt: skip
                part = {"type": "output_text", "text": "", "annotations": []}
                await send("response.content_part.added", item_id=item["id"],
                           output_index=index, content_index=0, part=part)  # fmt: skip
                for number, piece in enumerate(pieces):
                    if behaviour.drop_after is not None and number >= behaviour.drop_after:
                        if request.transport is not None:
                            request.transport.abort()
                        return response
                    if (
                        behaviour.inband_error_after is not None
                        and number >= behaviour.inband_error_after
                    ):
                        await send(
                            "error", code="server_error", message="mock in-band failure", param=None
                        )
                        await response.write_eof()
                        return response
                    if behaviour.interval and number:
                        await asyncio.sleep(behaviour.interval)
                    await send("response.output_text.delta", item_id=item["id"], output_index=index,
                               content_index=0, delta=piece)  # fmt: skip
                    record.chunks_sent += 1
                text = item["content"][0]["text"]
                await send("response.output_text.done", item_id=item["id"], output_index=index,
                           content_index=0, text=text)  # fmt: skip
            elif kind == "reasoning":
                await send(
                    "response.output_item.added", output_index=index, item={**item, "summary": []}
                )
                await send("response.reasoning_summary_text.delta", item_id=item["id"],
                           output_index=index, summary_index=0, delta=summary)  # fmt: skip
            elif kind == "function_call":
                await send("response.output_item.added", output_index=index,
                           item={**item, "arguments": "", "status": "in_progress"})  # fmt: skip
                await send("response.function_call_arguments.delta", item_id=item["id"],
                           output_index=index, delta=item["arguments"])  # fmt: skip
            else:
                await send("response.output_item.added", output_index=index, item=item)
            await send("response.output_item.done", output_index=index, item=item)
        await send("response.completed", response=response_object("completed", output))
        await response.write_eof()
        return response

    async def _anthropic_messages(self, request: web.Request) -> web.StreamResponse:
        """Anthropic's Messages API (its public docs): `x-api-key` and `anthropic-version`
        required; text, thinking (`reasoning=N` or mock-reasoner), tool use (mock-tools with
        tools), usage; streamed as its events."""

        def error(status: int, kind: str, message: str) -> web.Response:
            body = {"type": "error", "error": {"type": kind, "message": message}}
            return web.Response(
                status=status, body=orjson.dumps(body), content_type="application/json"
            )

        body, model, record, behaviour = await self._receive(request)
        record.finished = True
        if not request.headers.get("x-api-key"):
            return error(401, "authentication_error", "x-api-key header is required")
        if not request.headers.get("anthropic-version"):
            return error(400, "invalid_request_error", "anthropic-version header is required")
        if not isinstance(body, dict) or not body.get("messages") or not body.get("max_tokens"):
            return error(400, "invalid_request_error", "messages and max_tokens are required")
        if behaviour.status != 200:
            return error(behaviour.status, "api_error", behaviour.error_message or "mock failure")
        if behaviour.latency:
            await asyncio.sleep(behaviour.latency)
        pieces = _content_pieces(behaviour.text, behaviour.chunks)
        thinking = _content_pieces(REASONING_TEXT, behaviour.reasoning)
        use_tool = bool(behaviour.tool_call and body.get("tools"))
        tool = (body.get("tools") or [{}])[0] if use_tool else {}
        usage = {"input_tokens": _count_words(body["messages"]), "output_tokens": behaviour.chunks}
        message_id = f"msg_mock_{record.id}"
        if not body.get("stream"):
            content: list[dict[str, Any]] = []
            if thinking:
                content.append(
                    {"type": "thinking", "thinking": "".join(thinking), "signature": "sig"}
                )
            if use_tool:
                content.append(
                    {
                        "type": "tool_use",
                        "id": "toolu_mock_1",
                        "name": tool.get("name"),
                        "input": {"city": "Shanghai"},
                    }
                )
            else:
                content.append({"type": "text", "text": behaviour.text})
            message = {
                "id": message_id, "type": "message", "role": "assistant", "model": model,
                "content": content, "stop_reason": "tool_use" if use_tool else "end_turn",
                "stop_sequence": None, "usage": usage,
            }  # fmt: skip
            return web.Response(body=orjson.dumps(message), content_type="application/json")
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)

        async def send(kind: str, payload: dict[str, Any]) -> None:
            await response.write(
                b"event: "
                + kind.encode()
                + b"\ndata: "
                + orjson.dumps({"type": kind, **payload})
                + b"\n\n"
            )

        start: dict[str, Any] = {"id": message_id, "type": "message", "role": "assistant", "model": model, "content": [],
                 "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": usage["input_tokens"], "output_tokens": 1}}  # fmt: skip
        await send("message_start", {"message": start})
        await send("ping", {})
        index = 0
        if thinking:
            await send(
                "content_block_start",
                {
                    "index": index,
                    "content_block": {"type": "thinking", "thinking": "", "signature": ""},
                },
            )
            for piece in thinking:
                await send(
                    "content_block_delta",
                    {"index": index, "delta": {"type": "thinking_delta", "thinking": piece}},
                )
            await send(
                "content_block_delta",
                {"index": index, "delta": {"type": "signature_delta", "signature": "sig"}},
            )
            await send("content_block_stop", {"index": index})
            index += 1
        if use_tool:
            await send(
                "content_block_start",
                {
                    "index": index,
                    "content_block": {
                        "type": "tool_use",
                        "id": "toolu_mock_1",
                        "name": tool.get("name"),
                        "input": {},
                    },
                },
            )
            for part in ('{"city": ', '"Shanghai"}'):
                await send(
                    "content_block_delta",
                    {"index": index, "delta": {"type": "input_json_delta", "partial_json": part}},
                )
        else:
            await send(
                "content_block_start",
                {"index": index, "content_block": {"type": "text", "text": ""}},
            )
            for number, piece in enumerate(pieces):
                if behaviour.drop_after is not None and number >= behaviour.drop_after:
                    if request.transport is not None:
                        request.transport.abort()
                    return response
                if behaviour.interval and number:
                    await asyncio.sleep(behaviour.interval)
                await send(
                    "content_block_delta",
                    {"index": index, "delta": {"type": "text_delta", "text": piece}},
                )
                record.chunks_sent += 1
        await send("content_block_stop", {"index": index})
        stop = "tool_use" if use_tool else "end_turn"
        await send(
            "message_delta",
            {
                "delta": {"stop_reason": stop, "stop_sequence": None},
                "usage": {"output_tokens": usage["output_tokens"]},
            },
        )
        await send("message_stop", {})
        await response.write_eof()
        return response

    def _usage(self, body: dict[str, Any], behaviour: Behaviour, completion: int) -> dict[str, Any]:
        prompt = _count_words(body.get("messages"))
        usage: dict[str, Any] = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }
        if behaviour.usage == "cached":
            usage["prompt_tokens_details"] = {"cached_tokens": prompt // 2}
        if behaviour.reasoning:
            usage["completion_tokens_details"] = {"reasoning_tokens": behaviour.reasoning}
        return usage

    def _complete(self, body: dict[str, Any], behaviour: Behaviour) -> web.Response:
        message: dict[str, Any] = {"role": "assistant", "content": behaviour.text}
        if behaviour.think:
            message["content"] = f"<think>{THINK_TEXT}</think>{behaviour.text}"
        if behaviour.reasoning:
            message[behaviour.reasoning_field] = REASONING_TEXT
        finish = "stop"
        if behaviour.tool_call and body.get("tools"):
            message = {"role": "assistant", "content": None, "tool_calls": [_tool_call(body)]}
            finish = "tool_calls"
        payload: dict[str, Any] = {
            "id": f"chatcmpl-mock-{int(time.time() * 1000)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model"),
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        }
        if behaviour.usage != "never":
            payload["usage"] = self._usage(body, behaviour, behaviour.chunks + behaviour.reasoning)
        return web.Response(body=orjson.dumps(payload), content_type="application/json")

    async def _stream(
        self,
        request: web.Request,
        body: dict[str, Any],
        behaviour: Behaviour,
        record: RecordedRequest,
    ) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        newline = b"\r\n" if behaviour.malformed == "crlf" else b"\n"
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        created = int(time.time())
        base = {
            "id": f"chatcmpl-mock-{record.id}",
            "object": "chat.completion.chunk",
            "created": created,
            "model": body.get("model"),
        }
        sent = 0

        def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            payload = {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
            if behaviour.usage == "every":
                payload["usage"] = self._usage(body, behaviour, sent)
            elif include_usage and behaviour.usage != "never":
                payload["usage"] = None
            return payload

        async def write(data: bytes) -> None:
            if behaviour.malformed == "split" and len(data) > 4:
                middle = len(data) // 2
                await response.write(data[:middle])
                await asyncio.sleep(0.005)
                await response.write(data[middle:])
            else:
                await response.write(data)
            if behaviour.malformed == "comments":
                await response.write(b": keep-alive" + newline + newline)

        if behaviour.stall_before:
            await asyncio.sleep(behaviour.stall_before)
        await write(_sse(chunk({"role": "assistant", "content": ""}), newline))

        deltas: list[dict[str, Any]] = []
        if behaviour.tool_call and body.get("tools"):
            call = _tool_call(body)
            deltas.append({"tool_calls": [{"index": 0, **call}]})
        else:
            deltas += [
                {behaviour.reasoning_field: piece}
                for piece in _content_pieces(REASONING_TEXT, behaviour.reasoning)
            ][: behaviour.reasoning]
            pieces = _content_pieces(behaviour.text, behaviour.chunks)
            if behaviour.think:
                pieces = ["<thi", f"nk>{THINK_TEXT}</th", "ink>", *pieces]
            deltas += [{"content": piece} for piece in pieces]

        for index, delta in enumerate(deltas):
            if behaviour.drop_after is not None and sent >= behaviour.drop_after:
                record.chunks_sent = sent
                if request.transport is not None:
                    request.transport.abort()
                return response
            if behaviour.inband_error_after is not None and sent >= behaviour.inband_error_after:
                await write(_sse(INBAND_ERROR, newline))
                record.chunks_sent = sent
                return response
            if behaviour.malformed == "invalid_json" and index == 1:
                await write(b"data: {not json" + newline + newline)
            if behaviour.interval and index:
                await asyncio.sleep(behaviour.interval)
            if behaviour.stall_after is not None and sent == behaviour.stall_after:
                await asyncio.sleep(behaviour.stall)
            sent += 1
            await write(_sse(chunk(delta), newline))
            record.chunks_sent = sent

        if behaviour.malformed == "repeat":
            repeated = _sse(chunk({"content": "again "}), newline)
            while True:
                await asyncio.sleep(behaviour.interval or 0.01)
                await write(repeated)
                record.chunks_sent += 1

        finish = "tool_calls" if behaviour.tool_call and body.get("tools") else "stop"
        last = chunk({}, finish)
        if behaviour.usage == "final":
            last["usage"] = self._usage(body, behaviour, sent)
        await write(_sse(last, newline))
        if include_usage and behaviour.usage in ("last", "cached"):
            usage_chunk: dict[str, Any] = {
                **base,
                "choices": [],
                "usage": self._usage(body, behaviour, sent),
            }
            await write(_sse(usage_chunk, newline))
        await write(b"data: [DONE]" + newline + newline)
        await response.write_eof()
        return response


def _tool_call(body: dict[str, Any]) -> dict[str, Any]:
    tools = body.get("tools") or []
    name = "unknown"
    if tools and isinstance(tools[0], dict):
        name = str((tools[0].get("function") or {}).get("name", name))
    return {
        "id": "call_mock_1",
        "type": "function",
        "function": {"name": name, "arguments": '{"city": "Shanghai"}'},
    }


class MockServer:
    """Runs the mock on a free (or given) loopback port in a background thread."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.mock = MockUpstream()
        self.host, self.port = host, port
        self._thread = LoopThread("mock-upstream")
        # Stopping does not wait for answers still being written (a test's stream may be left
        # open): they are cancelled after a moment, well inside `LoopThread.stop`'s timeout.
        self._runner = web.AppRunner(
            self.mock.app, handler_cancellation=True, access_log=None, shutdown_timeout=1.0
        )

    @property
    def state(self) -> MockState:
        return self.mock.state

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def base_url(self, profile: str | None = None) -> str:
        """The OpenAI base URL (ending in /v1) for a channel, optionally under a profile."""
        return f"{self.url}/{profile}/v1" if profile else f"{self.url}/v1"

    def set_profile(self, name: str, **options: object) -> None:
        self.state.profiles[name] = {k: str(v) for k, v in options.items()}

    def start(self) -> MockServer:
        self._thread.start()
        self._thread.run(self._runner.setup())
        assert self._runner.server is not None
        server = self._thread.listen(self._runner.server, self.host, self.port)
        self.port = server.sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        self._thread.stop(cleanup=self._runner.cleanup)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9100)
    parser.add_argument(
        "--profile",
        action="append",
        default=[],
        metavar="NAME:key=value,...",
        help="preset options for requests under /NAME/v1/ (repeatable)",
    )
    args = parser.parse_args(argv)
    mock = MockUpstream()
    for spec in args.profile:
        name, _, options = spec.partition(":")
        mock.state.profiles[name] = dict(parse_qsl(options.replace(",", "&")))
    print(
        f"Mock upstream on http://{args.host}:{args.port}/v1 (models: {', '.join(PRESETS)})",
        flush=True,
    )
    try:
        import uvloop

        loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    except ImportError:
        loop = asyncio.new_event_loop()
    with contextlib.suppress(KeyboardInterrupt):
        web.run_app(
            mock.app,
            host=args.host,
            port=args.port,
            access_log=None,
            print=None,
            handler_cancellation=True,
            loop=loop,
        )


if __name__ == "__main__":
    main()
