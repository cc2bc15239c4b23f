"""Prices: versions in force by time, exact costs in nano-units, import (own and LiteLLM's shape)
and export, and the cost of every call on its log row and in the daily rollups."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from app.billing.money import micro_text, nano_text, to_micro, to_nano
from app.billing.prices import Price
from app.models import CallLog, UsageDaily
from tests.conftest import Harness, HarnessFactory
from tests.logs.rows import sample, write

PRICES = "/api/admin/prices"


def test_amounts_are_exact_integers() -> None:
    assert to_micro("2.5") == 2_500_000
    assert to_micro(0.0375) == 37_500  # a float is read as printed, not as its binary value
    assert to_micro(3) == 3_000_000
    assert micro_text(2_500_000) == "2.5"
    assert micro_text(37_500) == "0.0375"
    assert micro_text(0) == "0"
    assert nano_text(123_456) == "0.000123456"
    assert to_nano("0.0000000015") == 2  # half up at the ninth place
    for bad in ("-1", "abc", "1e400", "0.0000001", True, "NaN", "Infinity"):
        with pytest.raises(ValueError, match="amount"):
            to_micro(bad)


def test_a_calls_cost() -> None:
    price = Price(
        input=2_500_000, cached_input=1_250_000, output=10_000_000, reasoning=10_000_000, call=0
    )
    # 1,000 prompt tokens of which 200 cached, 500 completion tokens of which 100 reasoning:
    # 800 × 2.5 + 200 × 1.25 + 500 × 10 (per million) = 0.00725 currency = 7,250,000 nano.
    assert price.cost(1000, 200, 500, 100, answered=True) == 7_250_000
    # One token at 0.0375 per million: 0.0000000375 → rounds half up to 38 nano.
    assert Price(37_500, 37_500, 0, 0, 0).cost(1, 0, 0, 0, answered=True) == 38
    # The fee only for an answered call; nonsense counts (cached > prompt) are bounded.
    fee = Price(0, 0, 0, 0, call=10_000)  # 0.01 per call
    assert fee.cost(0, 0, 0, 0, answered=True) == 10_000_000
    assert fee.cost(10, 0, 0, 0, answered=False) == 0
    assert Price(1_000_000, 0, 0, 0, 0).cost(10, 50, -3, 9, answered=True) == 0


async def _price(client: httpx.AsyncClient, admin: dict[str, str], **body: Any) -> dict[str, Any]:
    response = await client.post(PRICES, json=body, headers=admin)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def test_prices_are_versions_and_calls_keep_the_price_they_started_under(
    harness: Harness, client: httpx.AsyncClient
) -> None:
    admin = await harness.admin_headers()
    now = datetime.now(UTC)
    old = await _price(
        client,
        admin,
        model="gpt-x",
        input="1",
        output="2",
        effective_from=(now - timedelta(days=10)).isoformat(),
    )
    new = await _price(
        client,
        admin,
        model="gpt-x",
        input="2",
        output="4",
        per_call="0.01",
        effective_from=(now - timedelta(days=1)).isoformat(),
    )
    later = await _price(
        client,
        admin,
        model="gpt-x",
        input="9",
        output="9",
        effective_from=(now + timedelta(days=1)).isoformat(),
    )
    assert (new["input"], new["per_call"], new["cached_input"]) == ("2", "0.01", None)
    listed = (await client.get(PRICES, headers=admin)).json()
    assert listed["currency"] == "USD"
    in_force = {item["id"]: item["in_force"] for item in listed["items"]}
    assert in_force == {old["id"]: False, new["id"]: True, later["id"]: False}

    def row(days_ago: float, **fields: Any) -> dict[str, Any]:
        base = {
            "created_at": now - timedelta(days=days_ago),
            "request_id": f"r{days_ago}",
            "source": "api",
            "user_id": 1,
            "api_key_id": None,
            "client_ip": "127.0.0.1",
            "requested_model": "gpt-x",
            "upstream_model": "gpt-x",
            "channel_id": None,
            "channels_tried": [],
            "stream": False,
            "status_code": 200,
            "success": True,
            "end_reason": "done",
            "error_message": None,
            "prompt_tokens": 1000,
            "completion_tokens": 1000,
            "reasoning_tokens": 0,
            "cached_tokens": 0,
            "total_tokens": 2000,
            "usage_source": "provider",
            "ttft_ms": 10,
            "duration_ms": 20,
        }
        return {**base, **fields}

    await write(
        harness.app,
        [
            row(5),  # the old price: 1000 × 1 + 1000 × 2 per million = 0.003
            row(0.5),  # the new one: 0.002 + 0.004 + 0.01 fee = 0.016
            row(0.4, requested_model="free-ish"),  # no price: unknown, not free
            row(0.3, end_reason="rejected", prompt_tokens=0, completion_tokens=0, total_tokens=0),
        ],
    )
    async with harness.app.state.ctx.sessionmaker() as db:
        costs = (await db.execute(select(CallLog.request_id, CallLog.cost))).all()
        total = await db.scalar(select(func.sum(UsageDaily.cost)).where(UsageDaily.dim == "all"))
        unpriced = await db.scalar(
            select(func.sum(UsageDaily.unpriced_calls)).where(UsageDaily.dim == "all")
        )
    assert dict(costs) == {"r5": 3_000_000, "r0.5": 16_000_000, "r0.4": None, "r0.3": 0}
    assert (total, unpriced) == (19_000_000, 1)


async def test_a_channel_price_overrides_the_models(
    harness: Harness, client: httpx.AsyncClient
) -> None:
    admin = await harness.admin_headers()
    channel = await client.post(
        "/api/admin/channels",
        json={
            "name": "cheap",
            "base_url": "https://api.example.com/v1",
            "api_key": "sk-x",
            "models": ["m"],
        },
        headers=admin,
    )
    channel_id = channel.json()["id"]
    await _price(client, admin, model="m", input="10", output="10")
    override = await _price(client, admin, model="m", channel_id=channel_id, input="1", output="1")
    assert override["channel_name"] == "cheap"
    book = harness.app.state.ctx.prices
    now = datetime.now(UTC)
    assert book.price("m", channel_id, now).input == 1_000_000
    assert book.price("m", channel_id + 1, now).input == 10_000_000
    assert book.price("m", None, now).input == 10_000_000
    missing = await client.post(
        PRICES,
        json={"model": "m", "channel_id": 99999, "input": "1", "output": "1"},
        headers=admin,
    )
    assert missing.status_code == 400


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"model": "m", "input": "-1", "output": "1"}, "input"),
        ({"model": "m", "input": "1.0000001", "output": "1"}, "input"),
        ({"model": "m", "input": "abc", "output": "1"}, "input"),
        ({"model": "", "input": "1", "output": "1"}, "model"),
        ({"model": "m", "input": "1"}, "output"),
        ({"model": "m", "input": "1", "output": "1", "extra": 1}, "extra"),
    ],
)
async def test_bad_prices_are_422_and_change_nothing(
    harness: Harness, client: httpx.AsyncClient, body: dict[str, Any], field: str
) -> None:
    admin = await harness.admin_headers()
    response = await client.post(PRICES, json=body, headers=admin)
    assert response.status_code == 422
    assert field in response.text
    assert (await client.get(PRICES, headers=admin)).json()["items"] == []


async def test_import_litellm_and_own_exports(harness: Harness, client: httpx.AsyncClient) -> None:
    admin = await harness.admin_headers()
    await client.post(
        "/api/admin/channels",
        json={
            "name": "c",
            "base_url": "https://api.example.com/v1",
            "api_key": "sk-x",
            "models": ["gpt-4o", "deepseek-chat"],
            "model_mapping": {"claude": "x"},
        },
        headers=admin,
    )
    litellm = {
        "sample_spec": {"input_cost_per_token": 0, "output_cost_per_token": 0},
        "gpt-4o": {
            "input_cost_per_token": 2.5e-06,
            "output_cost_per_token": 1e-05,
            "cache_read_input_token_cost": 1.25e-06,
            "litellm_provider": "openai",
            "mode": "chat",
        },
        "deepseek/deepseek-chat": {
            "input_cost_per_token": 2.7e-07,
            "output_cost_per_token": 1.1e-06,
        },
        "dall-e-3": {"output_cost_per_image": 0.04},
        "not-served": {"input_cost_per_token": 1e-06, "output_cost_per_token": 1e-06},
        "bad": {"input_cost_per_token": "lots", "output_cost_per_token": 1},
    }
    result = (await client.post(f"{PRICES}/import", json=litellm, headers=admin)).json()
    assert result["imported"] == 2
    listed = (await client.get(PRICES, headers=admin)).json()
    got = {i["model"]: (i["input"], i["cached_input"], i["output"]) for i in listed["items"]}
    assert got == {"deepseek-chat": ("0.27", None, "1.1"), "gpt-4o": ("2.5", "1.25", "10")}
    assert listed["unpriced_models"] == ["claude"]
    again = (await client.post(f"{PRICES}/import", json=litellm, headers=admin)).json()
    assert again["imported"] == 0  # nothing changed: no new versions
    everything = await client.post(
        f"{PRICES}/import", params={"only_served": "false"}, json=litellm, headers=admin
    )
    assert everything.json()["imported"] == 2  # not-served and deepseek/deepseek-chat

    exported = await client.get(f"{PRICES}/export", headers=admin)
    assert exported.headers["content-disposition"].startswith("attachment")
    data = exported.json()
    assert data["currency"] == "USD"
    assert {"model": "gpt-4o", "input": "2.5", "cached_input": "1.25", "output": "10"} in data[
        "prices"
    ]
    data["prices"].append({"model": "new", "input": "1", "output": "x"})
    data["prices"].append(
        {"model": "new2", "channel": "no-such-channel", "input": "1", "output": "1"}
    )
    data["prices"].append({"model": "claude", "channel": "c", "input": "3", "output": "15"})
    result = (await client.post(f"{PRICES}/import", json=data, headers=admin)).json()
    assert result["imported"] == 1  # only the new claude price; the rest unchanged or refused
    assert len(result["errors"]) == 2
    assert any("no channel named" in error for error in result["errors"])


async def test_prices_are_for_admins_only(
    harness: Harness, client: httpx.AsyncClient, make_account: Any
) -> None:
    user = await make_account()
    assert (await client.get(PRICES, headers=user.headers)).status_code == 403
    assert (await client.get(PRICES)).status_code == 401
    response = await client.post(
        PRICES, json={"model": "m", "input": "1", "output": "1"}, headers=user.headers
    )
    assert response.status_code == 403


@pytest.mark.slow
async def test_reprice_gives_past_calls_of_a_newly_priced_model_their_cost(
    harness_factory: HarnessFactory, database: Any, tmp_path: Any
) -> None:
    from tests.processes import app_env, start_cli

    harness = await harness_factory()
    rows = sample(200, days=4)
    await write(harness.app, rows)
    async with harness.app.state.ctx.sessionmaker() as db:
        assert await db.scalar(select(func.count()).where(CallLog.cost.is_(None))) > 0
        unpriced = await db.scalar(
            select(func.sum(UsageDaily.unpriced_calls)).where(UsageDaily.dim == "all")
        )
    assert unpriced
    admin = await harness.admin_headers()
    models = {row["requested_model"] for row in rows}
    for model in models:
        await _price(
            harness.client,
            admin,
            model=model,
            input="1",
            output="2",
            effective_from=(datetime.now(UTC) - timedelta(days=30)).isoformat(),
        )
    proc = start_cli(
        ["rebuild-stats", "--reprice"],
        app_env(tmp_path / "cli", database, ADMIN_PASSWORD="cli-admin-password-1"),
    )
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "call-log rows changed" in out
    expected = sum(
        (row["prompt_tokens"] * 1_000_000 + row["completion_tokens"] * 2_000_000 + 500) // 1000
        if row["end_reason"] == "done" or row["prompt_tokens"] or row["completion_tokens"]
        else 0
        for row in rows
    )
    async with harness.app.state.ctx.sessionmaker() as db:
        assert await db.scalar(select(func.count()).where(CallLog.cost.is_(None))) == 0
        total = await db.scalar(select(func.sum(UsageDaily.cost)).where(UsageDaily.dim == "all"))
        unpriced = await db.scalar(
            select(func.sum(UsageDaily.unpriced_calls)).where(UsageDaily.dim == "all")
        )
    assert (total, unpriced) == (expected, 0)


async def test_odd_inputs_are_refused_cleanly(harness: Harness, client: httpx.AsyncClient) -> None:
    admin = await harness.admin_headers()
    # A time without a zone is UTC; an import naming a channel id that does not exist is an
    # entry refused, not a server error; NaN, huge and negative costs are skipped.
    naive = await client.post(
        PRICES,
        json={"model": "m", "input": "1", "output": "1", "effective_from": "2026-01-01T00:00:00"},
        headers=admin,
    )
    assert naive.status_code == 201, naive.text
    assert naive.json()["effective_from"].startswith("2026-01-01T00:00:00")
    result = await client.post(
        f"{PRICES}/import",
        json={"prices": [{"model": "x", "channel_id": 99999, "input": "1", "output": "1"}]},
        headers=admin,
    )
    assert result.status_code == 200
    assert (result.json()["imported"], result.json()["errors"]) == (
        0,
        ["prices[0]: no channel with id 99999"],
    )
    weird = await client.post(
        f"{PRICES}/import",
        params={"only_served": "false"},
        content=b'{"a": {"input_cost_per_token": NaN, "output_cost_per_token": 1},'
        b' "b": {"input_cost_per_token": 1e30, "output_cost_per_token": 1},'
        b' "c": {"input_cost_per_token": -1, "output_cost_per_token": 1}}',
        headers={**admin, "Content-Type": "application/json"},
    )
    assert weird.status_code == 200, weird.text
    assert weird.json()["imported"] == 0
    assert weird.json()["skipped"] == 3
    assert [e.split(":")[0] for e in weird.json()["errors"]] == ["a", "b", "c"]  # each named
    not_object = await client.post(f"{PRICES}/import", json=[1, 2], headers=admin)
    assert not_object.status_code == 422
