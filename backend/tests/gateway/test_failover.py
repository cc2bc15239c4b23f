"""Routing across channels: failover, the circuit breaker, automatic disabling and the health probe."""

from __future__ import annotations

import time

import openai
import pytest

from app.devtools.mock_upstream import MockServer
from tests.live import GatewayFactory, LiveGateway
from tests.processes import free_port

MESSAGES = [{"role": "user", "content": "hi"}]


def _client(gateway: LiveGateway, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=key, max_retries=0)


def _hits(mock: MockServer, profile: str) -> int:
    return sum(1 for r in mock.state.chat_requests() if r.profile == profile)


@pytest.mark.parametrize(
    "failure",
    [
        {"status": "503"},
        {"status": "500"},
        {"status": "429", "retry_after": "30"},
        {"stall_before": "5"},  # nothing within the first-byte timeout
        {"status": "200", "inband_error_after": "0"},  # an error inside a 200, before any data
    ],
    ids=["503", "500", "429", "stall-before-first-byte", "inband-error-up-front"],
)
@pytest.mark.parametrize("stream", [False, True], ids=["non-stream", "stream"])
def test_failover_to_a_healthy_channel(
    gateway: LiveGateway, mock_upstream: MockServer, failure: dict[str, str], stream: bool
) -> None:
    mock_upstream.set_profile("bad", **failure)
    bad = gateway.create_channel(
        name="bad", base_url=mock_upstream.base_url("bad"), priority=10, first_byte_timeout=1
    )
    good = gateway.create_channel(name="good", base_url=mock_upstream.base_url("good"))
    key = gateway.create_key()
    with _client(gateway, key) as client:
        if stream:
            chunks = list(
                client.chat.completions.create(model="mock-gpt", messages=MESSAGES, stream=True)  # type: ignore[arg-type]
            )
            text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        else:
            completion = client.chat.completions.create(model="mock-gpt", messages=MESSAGES)  # type: ignore[arg-type]
            text = completion.choices[0].message.content or ""
    assert text.startswith("Hello from the mock upstream.")
    assert _hits(mock_upstream, "bad") == 1
    assert _hits(mock_upstream, "good") == 1
    (row,) = gateway.wait_for_logs(1)
    assert row.channels_tried == [bad["id"], good["id"]]
    assert row.channel_id == good["id"]
    assert row.end_reason == "done"


def test_connection_refused_fails_over(gateway: LiveGateway, mock_upstream: MockServer) -> None:
    gateway.create_channel(name="down", base_url=f"http://127.0.0.1:{free_port()}/v1", priority=5)
    gateway.create_channel(name="up", base_url=mock_upstream.base_url())
    with _client(gateway, gateway.create_key()) as client:
        completion = client.chat.completions.create(model="mock-gpt", messages=MESSAGES)  # type: ignore[arg-type]
    assert completion.choices[0].message.content


def test_a_callers_400_is_relayed_and_never_counts_against_the_channel(
    gateway_factory: GatewayFactory, mock_upstream: MockServer
) -> None:
    gateway = gateway_factory(runtime={"breaker_consecutive_failures": 2})
    mock_upstream.set_profile("picky", status=400, error_code="context_length_exceeded")
    channel = gateway.create_channel(name="picky", base_url=mock_upstream.base_url("picky"))
    gateway.create_channel(name="other", base_url=mock_upstream.base_url("other"), priority=-5)
    with _client(gateway, gateway.create_key()) as client:
        for _ in range(4):
            with pytest.raises(openai.BadRequestError) as info:
                client.chat.completions.create(model="mock-gpt", messages=MESSAGES)  # type: ignore[arg-type]
            assert info.value.code == "context_length_exceeded"
    # No failover to "other", no breaker: the picky channel took every request.
    assert _hits(mock_upstream, "picky") == 4
    assert _hits(mock_upstream, "other") == 0
    assert gateway.ctx.breaker.available((channel["id"], "mock-gpt"))


def test_a_wrong_key_answered_with_400_disables_the_channel_and_fails_over(
    gateway: LiveGateway, mock_upstream: MockServer
) -> None:
    """A proxy in front of a provider (LiteLLM without a database) says 400 for a bad key: by
    status alone that is the caller's fault, and the model would be broken for everyone."""
    mock_upstream.set_profile(
        "proxy", status=400, error_message="Authentication Error, Invalid API key passed"
    )
    proxy = gateway.create_channel(
        name="proxy", base_url=mock_upstream.base_url("proxy"), priority=9
    )
    gateway.create_channel(name="direct", base_url=mock_upstream.base_url("direct"))
    with _client(gateway, gateway.create_key()) as client:
        assert client.chat.completions.create(model="mock-gpt", messages=MESSAGES).choices  # type: ignore[arg-type]
    row = gateway.channel(proxy["id"])
    assert (row["status"], row["status_reason"]) == ("auto_disabled", "auth_failed")
    # An admin's rule changes the verdict: this proxy's 400 "unavailable" fails over too.
    mock_upstream.set_profile("flaky", status=400, error_message="upstream unavailable, retry")
    flaky = gateway.create_channel(
        name="flaky", base_url=mock_upstream.base_url("flaky"), priority=8
    )
    with _client(gateway, gateway.create_key()) as client:
        with pytest.raises(openai.BadRequestError):  # by status: the caller's
            client.chat.completions.create(model="mock-gpt", messages=MESSAGES)  # type: ignore[arg-type]
        refused = gateway.http.put(
            "/api/admin/settings",
            json={"upstream_error_rules": "400 retryable upstream unavailable\n40 auth broken"},
            headers=gateway.admin,
        )
        assert refused.status_code == 422
        assert "line 2" in refused.text
        saved = gateway.http.put(
            "/api/admin/settings",
            json={"upstream_error_rules": "400 retryable upstream unavailable"},
            headers=gateway.admin,
        )
        assert saved.status_code == 200, saved.text
        assert client.chat.completions.create(model="mock-gpt", messages=MESSAGES).choices  # type: ignore[arg-type]
    assert gateway.channel(flaky["id"])["status"] == "enabled"  # retryable: not disabled


def test_401_disables_the_channel_and_the_probe_re_enables_it(
    gateway: LiveGateway, mock_upstream: MockServer
) -> None:
    mock_upstream.set_profile("revoked", status=401)
    revoked = gateway.create_channel(
        name="revoked", base_url=mock_upstream.base_url("revoked"), priority=9
    )
    gateway.create_channel(name="backup", base_url=mock_upstream.base_url("backup"))
    with _client(gateway, gateway.create_key()) as client:
        assert client.chat.completions.create(model="mock-gpt", messages=MESSAGES).choices  # type: ignore[arg-type]
        row = gateway.channel(revoked["id"])
        assert (row["status"], row["status_reason"]) == ("auto_disabled", "auth_failed")
        assert "401" in row["status_detail"]
        # Disabled channels are not tried again.
        client.chat.completions.create(model="mock-gpt", messages=MESSAGES)  # type: ignore[arg-type]
    assert _hits(mock_upstream, "revoked") == 1

    # Still failing: the probe leaves it off.
    assert gateway.run(gateway.ctx._probe_channels) == []
    mock_upstream.set_profile("revoked")  # the provider accepts the key again
    assert gateway.run(gateway.ctx._probe_channels) == [revoked["id"]]
    row = gateway.channel(revoked["id"])
    assert row["status"] == "enabled"
    assert row["last_test_ok"] is True


def test_quota_errors_disable_and_admin_disables_are_never_undone(
    gateway: LiveGateway, mock_upstream: MockServer
) -> None:
    mock_upstream.set_profile("broke", status=429, error_code="insufficient_quota")
    broke = gateway.create_channel(
        name="broke", base_url=mock_upstream.base_url("broke"), priority=9
    )
    gateway.create_channel(name="fine", base_url=mock_upstream.base_url("fine"))
    manual = gateway.create_channel(
        name="manual", base_url=mock_upstream.base_url("manual"), enabled=False
    )
    with _client(gateway, gateway.create_key()) as client:
        client.chat.completions.create(model="mock-gpt", messages=MESSAGES)  # type: ignore[arg-type]
    assert gateway.channel(broke["id"])["status_reason"] == "quota_exceeded"
    mock_upstream.set_profile("broke")
    assert gateway.run(gateway.ctx._probe_channels) == [broke["id"]]
    assert gateway.channel(manual["id"])["status"] == "disabled"
    assert _hits(mock_upstream, "manual") == 0


def test_breaker_opens_after_consecutive_failures_then_half_opens(
    gateway_factory: GatewayFactory, mock_upstream: MockServer
) -> None:
    gateway = gateway_factory(
        runtime={"breaker_consecutive_failures": 2, "breaker_cooldown_seconds": 0.5}
    )
    mock_upstream.set_profile("flaky", status=502)
    flaky = gateway.create_channel(
        name="flaky", base_url=mock_upstream.base_url("flaky"), priority=9
    )
    gateway.create_channel(name="steady", base_url=mock_upstream.base_url("steady"))
    with _client(gateway, gateway.create_key()) as client:
        for _ in range(5):
            client.chat.completions.create(model="mock-gpt", messages=MESSAGES)  # type: ignore[arg-type]
        # Two failures opened the breaker; the next three went straight to "steady".
        assert _hits(mock_upstream, "flaky") == 2
        time.sleep(0.6)
        mock_upstream.set_profile("flaky")  # recovered
        client.chat.completions.create(model="mock-gpt", messages=MESSAGES)  # type: ignore[arg-type]
        assert _hits(mock_upstream, "flaky") == 3  # the half-open probe
        client.chat.completions.create(model="mock-gpt", messages=MESSAGES)  # type: ignore[arg-type]
        assert _hits(mock_upstream, "flaky") == 4  # closed again: preferred by priority
    assert gateway.ctx.breaker.available((flaky["id"], "mock-gpt"))


def test_retry_after_keeps_the_channel_out_for_that_long(
    gateway_factory: GatewayFactory, mock_upstream: MockServer
) -> None:
    gateway = gateway_factory(runtime={"breaker_cooldown_seconds": 0.1})
    mock_upstream.set_profile("busy", status=429, retry_after=60)
    busy = gateway.create_channel(name="busy", base_url=mock_upstream.base_url("busy"), priority=9)
    gateway.create_channel(name="calm", base_url=mock_upstream.base_url("calm"))
    with _client(gateway, gateway.create_key()) as client:
        client.chat.completions.create(model="mock-gpt", messages=MESSAGES)  # type: ignore[arg-type]
        time.sleep(0.3)  # longer than the cooldown, far shorter than Retry-After
        client.chat.completions.create(model="mock-gpt", messages=MESSAGES)  # type: ignore[arg-type]
    assert _hits(mock_upstream, "busy") == 1
    assert gateway.ctx.breaker.retry_in((busy["id"], "mock-gpt")) > 50
    assert gateway.channel(busy["id"])["breaker_open"] == ["mock-gpt"], "shown to admins"
    listed = gateway.http.get("/api/admin/channels", headers=gateway.admin).json()["items"]
    assert {c["name"]: c["breaker_open"] for c in listed} == {"busy": ["mock-gpt"], "calm": []}


def test_every_channel_failing_stays_within_the_attempt_bound(
    gateway_factory: GatewayFactory, mock_upstream: MockServer
) -> None:
    gateway = gateway_factory(runtime={"max_attempts": 2})
    gateway.create_failing_channels(mock_upstream, status=500)
    with (
        _client(gateway, gateway.create_key()) as client,
        pytest.raises(openai.APIStatusError) as info,
    ):
        client.chat.completions.create(model="mock-gpt", messages=MESSAGES)  # type: ignore[arg-type]
    assert info.value.status_code == 502
    assert info.value.code == "upstream_error"
    assert mock_upstream.state.total == 2
    (row,) = gateway.wait_for_logs(1)
    assert (row.status_code, row.end_reason, row.success) == (502, "upstream_error", False)
    assert len(row.channels_tried) == 2


def test_all_channels_rate_limited_upstream_is_a_429_with_retry_after(
    gateway: LiveGateway, mock_upstream: MockServer
) -> None:
    mock_upstream.set_profile("limited", status=429, retry_after=7)
    gateway.create_channel(name="limited", base_url=mock_upstream.base_url("limited"))
    response = gateway.http.post(
        "/v1/chat/completions",
        json={"model": "mock-gpt", "messages": MESSAGES},
        headers={"Authorization": f"Bearer {gateway.create_key()}"},
    )
    assert response.status_code == 429
    assert response.headers["retry-after"] == "7"
    assert response.json()["error"]["type"] == "rate_limit_error"
    # The breaker now holds the channel: the next call is refused without an upstream call.
    again = gateway.http.post(
        "/v1/chat/completions",
        json={"model": "mock-gpt", "messages": MESSAGES},
        headers={"Authorization": f"Bearer {gateway.create_key()}"},
    )
    assert again.status_code == 503
    assert int(again.headers["retry-after"]) >= 5
    assert mock_upstream.state.total == 1


@pytest.mark.parametrize(
    ("failure", "status", "retry_after"),
    [
        ({"status": 503, "retry_after": 9}, 503, "9"),
        ({"status": 503, "retry_after": 2.5}, 503, "3"),
        ({"status": 503}, 503, None),
        ({"status": 502, "retry_after": 4}, 502, "4"),
        ({"status": 500}, 502, None),
    ],
)
@pytest.mark.parametrize("stream", [False, True], ids=["non-stream", "stream"])
def test_an_upstreams_retry_hint_and_unavailability_reach_the_caller(
    gateway: LiveGateway,
    mock_upstream: MockServer,
    failure: dict[str, object],
    status: int,
    retry_after: str | None,
    stream: bool,
) -> None:
    mock_upstream.set_profile("down", **failure)
    gateway.create_channel(name="down", base_url=mock_upstream.base_url("down"))
    response = gateway.http.post(
        "/v1/chat/completions",
        json={"model": "mock-gpt", "messages": MESSAGES, "stream": stream},
        headers={"Authorization": f"Bearer {gateway.create_key()}"},
    )
    assert response.status_code == status
    assert response.headers.get("retry-after") == retry_after
    assert response.json()["error"]["message"].startswith("No channel could answer")
    (row,) = gateway.wait_for_logs(1)
    assert (row.status_code, row.end_reason) == (status, "upstream_error")


def test_priority_first_and_channel_rpm_limit_skips_to_the_next(
    gateway: LiveGateway, mock_upstream: MockServer
) -> None:
    gateway.create_channel(
        name="small", base_url=mock_upstream.base_url("small"), priority=5, rpm_limit=2
    )
    gateway.create_channel(name="large", base_url=mock_upstream.base_url("large"))
    with _client(gateway, gateway.create_key()) as client:
        for _ in range(5):
            client.chat.completions.create(model="mock-gpt", messages=MESSAGES)  # type: ignore[arg-type]
    assert _hits(mock_upstream, "small") == 2
    assert _hits(mock_upstream, "large") == 3


def test_a_channel_with_an_undecryptable_key_is_disabled_alone(
    gateway: LiveGateway, mock_upstream: MockServer
) -> None:
    from cryptography.fernet import Fernet

    broken = gateway.create_channel(name="broken", base_url=mock_upstream.base_url("x"), priority=9)
    gateway.create_channel(name="fine", base_url=mock_upstream.base_url("fine"))
    foreign = Fernet(Fernet.generate_key()).encrypt(b"sk-from-another-install").decode()

    async def corrupt() -> None:
        from sqlalchemy import update

        from app.models import Channel

        async with gateway.ctx.sessionmaker() as db:
            await db.execute(
                update(Channel).where(Channel.id == broken["id"]).values(api_key_encrypted=foreign)
            )
            await db.commit()
        await gateway.ctx.registry.reload(gateway.ctx.sessionmaker)

    gateway.run(corrupt)
    with _client(gateway, gateway.create_key()) as client:
        assert client.chat.completions.create(model="mock-gpt", messages=MESSAGES).choices  # type: ignore[arg-type]
    row = gateway.channel(broken["id"])
    assert (row["status"], row["status_reason"]) == ("auto_disabled", "key_undecryptable")
    assert "ENCRYPTION_KEYS" in row["status_detail"]
    assert _hits(mock_upstream, "x") == 0
    # Testing it says why, without a 500.
    test = gateway.http.post(
        f"/api/admin/channels/{broken['id']}/test", json={}, headers=gateway.admin
    )
    assert test.status_code == 422
    assert test.json()["code"] == "key_undecryptable"
    # Entering the key again brings it back.
    fixed = gateway.http.patch(
        f"/api/admin/channels/{broken['id']}",
        json={"api_key": "sk-new-key-0000"},
        headers=gateway.admin,
    )
    assert fixed.json()["status"] == "enabled"
