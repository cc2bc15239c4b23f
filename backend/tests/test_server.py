"""The real thing: `python -m app serve` on a free loopback port, spoken to over HTTP."""

from __future__ import annotations

import signal
from pathlib import Path

import httpx
import pytest

from tests.conftest import DatabaseTarget
from tests.processes import app_env, free_port, start_cli, wait_ready

pytestmark = pytest.mark.slow


def test_server_starts_prints_credentials_and_serves_login(
    tmp_path: Path, fresh_database: DatabaseTarget
) -> None:
    port = free_port()
    env = app_env(tmp_path / "data", fresh_database, PORT=str(port), HOST="127.0.0.1")
    proc = start_cli(["serve"], env)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base, proc)
        with httpx.Client(base_url=base, timeout=10) as client:
            docs = client.get("/docs")
            assert docs.status_code == 200
            assert "swagger" in docs.text.lower()
            registered = client.post(
                "/api/auth/register", json={"username": "http_user", "password": "over the wire"}
            )
            assert registered.status_code == 201
            login = client.post(
                "/api/auth/login", json={"username": "http_user", "password": "over the wire"}
            )
            assert login.status_code == 200
            token = login.json()["access_token"]
            me = client.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"})
            assert me.json()["username"] == "http_user"
            assert me.headers["x-request-id"]
            assert "server" not in me.headers
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    # A graceful stop: uvicorn finishes shutdown, then re-raises SIGTERM (exit by that signal).
    assert proc.returncode in (0, -signal.SIGTERM), err
    assert "Application shutdown complete" in err
    assert f"AI Chat Gateway is ready: http://127.0.0.1:{port}" in out
    assert "Generated password:" in out
    # The generated password is printed once on stdout and never logged.
    password = out.split("Generated password:")[1].split()[0]
    assert password not in err


def test_weak_secret_refuses_to_start_with_a_clear_message(
    tmp_path: Path, fresh_database: DatabaseTarget
) -> None:
    env = app_env(tmp_path / "data", fresh_database, SECRET_KEY="changeme")
    proc = start_cli(["serve"], env)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert "Configuration error: SECRET_KEY is too short" in err
    assert "Traceback" not in err


def test_invalid_setting_names_the_variable_not_the_value(
    tmp_path: Path, fresh_database: DatabaseTarget
) -> None:
    env = app_env(tmp_path / "data", fresh_database, PORT="not-a-port")
    proc = start_cli(["serve"], env)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert "Configuration error: PORT" in err


def test_real_process_streams_through_the_mock_and_never_prints_the_channel_key(
    tmp_path: Path, fresh_database: DatabaseTarget
) -> None:
    import openai

    from app.devtools.mock_upstream import MockServer

    sentinel = "sk-process-SENTINEL-0f9e8d7c6b5a"
    mock = MockServer().start()
    port = free_port()
    env = app_env(
        tmp_path / "data",
        fresh_database,
        PORT=str(port),
        HOST="127.0.0.1",
        LOG_LEVEL="debug",
        ADMIN_PASSWORD="process admin password",
    )
    proc = start_cli(["serve"], env)
    base = f"http://127.0.0.1:{port}"
    responses: list[str] = []
    try:
        wait_ready(base, proc)
        mock.set_profile("echo", status=500, echo_key=1)  # the upstream repeats the key back
        with httpx.Client(base_url=base, timeout=30) as client:
            login = client.post(
                "/api/auth/login",
                json={"username": "admin", "password": "process admin password"},
            )
            admin = {"Authorization": f"Bearer {login.json()['access_token']}"}
            for name, profile, priority in (("echo", "echo", 1), ("ok", None, 0)):
                created = client.post(
                    "/api/admin/channels",
                    json={
                        "name": name,
                        "base_url": mock.base_url(profile),
                        "api_key": sentinel,
                        "models": ["mock-gpt"],
                        "priority": priority,
                    },
                    headers=admin,
                )
                assert created.status_code == 201
                responses.append(created.text)
            key = client.post("/api/keys", json={"name": "p"}, headers=admin).json()["key"]
        with openai.OpenAI(base_url=f"{base}/v1", api_key=key, max_retries=0) as sdk:
            chunks = list(
                sdk.chat.completions.create(
                    model="mock-gpt", messages=[{"role": "user", "content": "hi"}], stream=True
                )
            )
        responses += [chunk.model_dump_json() for chunk in chunks]
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert any(r.profile == "echo" for r in mock.state.chat_requests())
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
        mock.stop()
    assert "failed for mock-gpt" in err  # the failover was logged ...
    assert sentinel not in out + err  # ... without the key the upstream echoed back
    assert not any(sentinel in text for text in responses)
