"""Real clients through the gateway to a second upstream implementation: LiteLLM's proxy.

    make test-compat          # installs LiteLLM (compat/requirements.txt, hashed) into .venv-compat

The chain: client → gateway (a channel pointing at LiteLLM, its master key as the channel's key) →
LiteLLM's proxy (no database) → the mock upstream. Each check prints one line; the run fails if any check does.
Kept out of `make test`: LiteLLM is large and not the gateway's dependency.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import anthropic
import httpx
import openai

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
LITELLM = ROOT / ".venv-compat/bin/litellm"
MOCK_PORT, LITELLM_PORT, GATEWAY_PORT = 9631, 9632, 9633
ADMIN_PASSWORD = "compat-admin-password"
MASTER_KEY = "sk-compat-" + os.urandom(16).hex()  # LiteLLM refuses to start without one
MODELS = ("mock-gpt", "mock-tools", "mock-reasoner", "text-embedding-3-small")


def wait_ready(url: str, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not come up")
        time.sleep(0.3)


def litellm_config(path: Path) -> None:
    lines = ["model_list:"]
    for model in MODELS:
        lines += [
            f"  - model_name: {model}",
            "    litellm_params:",
            f"      model: openai/{model}",
            f"      api_base: http://127.0.0.1:{MOCK_PORT}/v1",
            "      api_key: sk-compat-upstream",
        ]
    path.write_text("\n".join(lines) + "\n")


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="acgw-compat-"))
    env = {**os.environ, "PYTHONPATH": str(ROOT / "backend")}
    for name in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "ENCRYPTION_KEYS"):
        env.pop(name, None)
    procs: list[subprocess.Popen[bytes]] = []
    config = work / "litellm.yaml"
    litellm_config(config)
    try:
        procs.append(
            subprocess.Popen(
                [PYTHON, "-m", "app.devtools.mock_upstream", "--port", str(MOCK_PORT)],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        procs.append(
            subprocess.Popen(
                [
                    str(LITELLM),
                    "--config",
                    str(config),
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(LITELLM_PORT),
                ],
                env={
                    **env,
                    "LITELLM_MASTER_KEY": MASTER_KEY,
                    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
                    "LITELLM_TELEMETRY": "False",
                },
                stdout=(work / "litellm.log").open("wb"),
                stderr=subprocess.STDOUT,
            )
        )
        procs.append(
            subprocess.Popen(
                [PYTHON, "-m", "app", "serve"],
                env={
                    **env,
                    "DATA_DIR": str(work / "data"),
                    "PORT": str(GATEWAY_PORT),
                    "ADMIN_PASSWORD": ADMIN_PASSWORD,
                },
                cwd=ROOT,
                stdout=(work / "gateway.log").open("wb"),
                stderr=subprocess.STDOUT,
            )
        )
        wait_ready(f"http://127.0.0.1:{MOCK_PORT}/_mock/stats")
        wait_ready(f"http://127.0.0.1:{LITELLM_PORT}/health/liveliness")
        wait_ready(f"http://127.0.0.1:{GATEWAY_PORT}/readyz")
        key = setup()
        return run_checks(key)
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=30)


def setup() -> str:
    base = f"http://127.0.0.1:{GATEWAY_PORT}"
    with httpx.Client(base_url=base, timeout=30) as http:
        token = http.post(
            "/api/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD}
        ).json()["access_token"]
        admin = {"Authorization": f"Bearer {token}"}
        channel = http.post(
            "/api/admin/channels",
            json={
                "name": "litellm",
                "base_url": f"http://127.0.0.1:{LITELLM_PORT}/v1",
                "api_key": MASTER_KEY,
                "models": [*MODELS, "not-in-litellm"],
            },
            headers=admin,
        )
        channel.raise_for_status()
        return str(http.post("/api/keys", json={"name": "compat"}, headers=admin).json()["key"])


FULL = "Hello from the mock upstream."
STREAMED = "Hello from the mock upstream. Hello from the"


def run_checks(key: str) -> int:
    gateway = f"http://127.0.0.1:{GATEWAY_PORT}"
    client = openai.OpenAI(base_url=f"{gateway}/v1", api_key=key, max_retries=0)
    claude = anthropic.Anthropic(base_url=gateway, api_key=key, max_retries=0)

    def chat() -> str:
        answer = client.chat.completions.create(
            model="mock-gpt", messages=[{"role": "user", "content": "hi"}]
        )
        assert answer.choices[0].message.content == FULL, answer
        assert answer.usage and answer.usage.completion_tokens == 8, answer.usage
        return f"usage {answer.usage.prompt_tokens}/{answer.usage.completion_tokens}"

    def chat_stream_with_usage() -> str:
        chunks = list(
            client.chat.completions.create(
                model="mock-gpt",
                messages=[{"role": "user", "content": "hi"}],
                stream=True,
                stream_options={"include_usage": True},
            )
        )
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert text == STREAMED, text
        usage = [c.usage for c in chunks if c.usage]
        assert usage and usage[-1].completion_tokens == 8, usage
        return f"{len(chunks)} chunks, usage in the last"

    def chat_stream_without_usage() -> str:
        chunks = list(
            client.chat.completions.create(
                model="mock-gpt", messages=[{"role": "user", "content": "hi"}], stream=True
            )
        )
        assert all(c.usage is None for c in chunks), "usage reached a client that did not ask"
        return f"{len(chunks)} chunks, no usage"

    def tools() -> str:
        answer = client.chat.completions.create(
            model="mock-tools",
            messages=[{"role": "user", "content": "Weather?"}],
            tools=[
                {
                    "type": "function",
                    "function": {
                        "name": "get_weather",
                        "parameters": {
                            "type": "object",
                            "properties": {"city": {"type": "string"}},
                        },
                    },
                }
            ],
        )
        call = answer.choices[0].message.tool_calls[0]  # type: ignore[index]
        assert call.function.name == "get_weather", call
        return f"tool call {call.function.name}({call.function.arguments})"

    def responses() -> str:
        first = client.responses.create(model="mock-gpt", input="hi")
        assert first.output_text == FULL, first
        follow = client.responses.create(
            model="mock-gpt", input="again", previous_response_id=first.id
        )
        with client.responses.stream(model="mock-gpt", input="hi") as stream:
            final = stream.get_final_response()
        assert final.output_text == STREAMED, final.output_text
        return f"kept, continued ({follow.status}), streamed"

    def embeddings() -> str:
        vectors = client.embeddings.create(
            model="text-embedding-3-small", input=["one", "two words"]
        )
        assert len(vectors.data) == 2, vectors
        return f"{len(vectors.data)} vectors of {len(vectors.data[0].embedding)}"

    def messages() -> str:
        message = claude.messages.create(
            model="mock-gpt", max_tokens=64, messages=[{"role": "user", "content": "hi"}]
        )
        assert message.content[0].text == FULL, message  # type: ignore[union-attr]
        with claude.messages.stream(
            model="mock-gpt", max_tokens=64, messages=[{"role": "user", "content": "hi"}]
        ) as stream:
            final = stream.get_final_message()
        assert final.content[0].text == STREAMED, final  # type: ignore[union-attr]
        return f"stop {final.stop_reason}, usage {final.usage.input_tokens}/{final.usage.output_tokens}"

    def unknown_to_litellm() -> str:
        try:
            client.chat.completions.create(
                model="not-in-litellm", messages=[{"role": "user", "content": "hi"}]
            )
        except openai.APIStatusError as error:
            return f"{error.status_code}: {str(error.message)[:90]}"
        raise AssertionError("LiteLLM answered a model it does not have")

    checks: list[tuple[str, Callable[[], str]]] = [
        ("chat completions", chat),
        ("chat stream, usage asked", chat_stream_with_usage),
        ("chat stream, usage not asked", chat_stream_without_usage),
        ("tool calls", tools),
        ("Responses API (translated)", responses),
        ("embeddings", embeddings),
        ("Anthropic Messages (translated)", messages),
        ("a model LiteLLM does not serve", unknown_to_litellm),
    ]
    failed = 0
    print("| check | result |\n|---|---|")
    for name, check in checks:
        try:
            print(f"| {name} | ok — {check()} |", flush=True)
        except Exception as exc:  # every check runs; the run fails at the end
            failed += 1
            print(f"| {name} | **FAILED** — {exc!r} |", flush=True)
            traceback.print_exc(file=sys.stderr)
    client.close()
    claude.close()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
