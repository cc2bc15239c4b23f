"""`/metrics`: who may read it, what it counts, and sums over worker processes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
from pydantic import SecretStr

from app.devtools.mock_upstream import MockServer
from tests.conftest import AccountFactory, Harness, HarnessFactory
from tests.live import UPSTREAM_KEY, GatewayFactory

TOKEN = "metrics-token-9f2c41d7a8b3e6"


async def test_metrics_need_an_allowed_address_a_token_or_an_admin(
    harness_factory: HarnessFactory,
) -> None:
    harness: Harness = await harness_factory(metrics={"token": SecretStr(TOKEN)})
    client = harness.client  # connects from 203.0.113.10: not an allowed address
    assert (await client.get("/metrics")).status_code == 401
    wrong = await client.get("/metrics", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 403
    token = await client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert token.status_code == 200
    assert token.headers["content-type"].startswith("text/plain")
    assert "acgw_calls_in_flight" in token.text
    admin = await client.get("/metrics", headers=await harness.admin_headers())
    assert admin.status_code == 200


async def test_a_user_cannot_read_metrics(
    harness: Harness, client: httpx.AsyncClient, make_account: AccountFactory
) -> None:
    alice = await make_account()
    assert (await client.get("/metrics", headers=alice.headers)).status_code == 403


def test_metrics_count_calls_tokens_and_latency(
    gateway_factory: GatewayFactory, mock_upstream: MockServer
) -> None:
    gateway = gateway_factory()  # its clients connect from 127.0.0.1: allowed by default
    channel = gateway.create_channel(base_url=mock_upstream.base_url())
    key = gateway.create_key()
    for _ in range(3):
        response = gateway.http.post(
            "/v1/chat/completions",
            json={"model": "mock-gpt", "messages": [{"role": "user", "content": "hi"}]},
            headers={"Authorization": f"Bearer {key}"},
        )
        assert response.status_code == 200
    gateway.http.post(
        "/v1/chat/completions",
        json={"model": "unknown-model", "messages": [{"role": "user", "content": "hi"}]},
        headers={"Authorization": f"Bearer {key}"},
    )
    gateway.wait_for_logs(4)
    text = gateway.http.get("/metrics").text
    labels = f'channel="{channel["id"]}",end_reason="done",model="mock-gpt",source="api"'
    assert f"acgw_requests_total{{{labels}}} 3.0" in text
    assert (
        'acgw_errors_total{channel="",end_reason="rejected",model="unknown-model",source="api"} 1.0'
        in text
    )
    assert (
        f'acgw_tokens_total{{channel="{channel["id"]}",kind="completion",model="mock-gpt",source="api"}}'
        in text
    )
    assert (
        f'acgw_request_duration_seconds_count{{channel="{channel["id"]}",model="mock-gpt"}} 3.0'
        in text
    )
    assert "acgw_call_log_queue 0.0" in text
    assert 'acgw_breakers{state="closed"}' in text
    tasks = next(line for line in text.splitlines() if line.startswith("acgw_asyncio_tasks "))
    assert float(tasks.split()[1]) >= 1  # at least the server's own background tasks
    assert UPSTREAM_KEY not in text


CHILD = """
import sys
from datetime import datetime, UTC
from app.stats.metrics import Metrics
row = {"requested_model": "m", "channel_id": 1, "source": "api", "end_reason": "done",
       "prompt_tokens": 10, "completion_tokens": 5, "duration_ms": 300, "ttft_ms": 100}
metrics = Metrics()
metrics.observe_batch([row, row])
metrics.in_flight.set(int(sys.argv[1]))
if sys.argv[2] == "show":
    print(metrics.exposition().decode())
else:
    metrics.close()  # as the app does when it shuts down
"""


def test_several_processes_report_one_sum(tmp_path: Path) -> None:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    for in_flight in (2, 3):
        subprocess.run(
            [sys.executable, "-c", CHILD, str(in_flight), "quiet"], env=env, check=True, timeout=60
        )
    shown = subprocess.run(
        [sys.executable, "-c", CHILD, "4", "show"],
        env=env,
        check=True,
        timeout=60,
        capture_output=True,
        text=True,
    ).stdout
    lines = {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in shown.splitlines()
        if line and not line.startswith("#")
    }
    assert lines['acgw_requests_total{channel="1",end_reason="done",model="m",source="api"}'] == 6
    assert lines['acgw_tokens_total{channel="1",kind="prompt",model="m",source="api"}'] == 60
    assert lines['acgw_request_duration_seconds_count{channel="1",model="m"}'] == 6
    # Gauges are summed over live processes only: the first two have exited.
    assert lines["acgw_calls_in_flight"] == 4
