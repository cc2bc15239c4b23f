from __future__ import annotations

from tests.conftest import Harness, HarnessFactory


async def test_healthz_and_readyz(harness: Harness) -> None:
    assert (await harness.client.get("/healthz")).json() == {"status": "ok"}
    ready = await harness.client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ok", "checks": {"database": "ok"}}


async def test_readyz_is_503_while_shutting_down(harness: Harness) -> None:
    harness.app.state.ctx.shutting_down = True
    response = await harness.client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["status"] == "shutting_down"
    assert (await harness.client.get("/healthz")).status_code == 200


async def test_readyz_is_503_when_the_database_is_gone(harness: Harness) -> None:
    ctx = harness.app.state.ctx
    real_engine = ctx.engine

    class BrokenEngine:
        def connect(self) -> object:
            raise ConnectionRefusedError("database down")

    ctx.engine = BrokenEngine()
    try:
        response = await harness.client.get("/readyz")
    finally:
        ctx.engine = real_engine
    assert response.status_code == 503
    assert response.json()["checks"]["database"] == "unavailable"


async def test_readyz_reports_redis(harness_factory: HarnessFactory, redis_url: str) -> None:
    harness = await harness_factory(redis={"url": redis_url})
    body = (await harness.client.get("/readyz")).json()
    assert body["checks"] == {"database": "ok", "redis": "ok"}
