from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from app.health import service as health_service
from app.health.context import HealthContextDep

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is alive and serving."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(ctx: HealthContextDep) -> JSONResponse:
    """Ready for traffic: the database answers and the process is not shutting down."""
    report = await health_service.readiness(ctx)
    return JSONResponse(report.body, status_code=200 if report.ready else 503)
