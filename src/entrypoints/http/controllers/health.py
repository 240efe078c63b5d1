"""Liveness, readiness and Prometheus metrics; no key needed."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
from dishka.integrations.litestar import FromDishka, inject
from litestar import Controller, MediaType, Response, get
from litestar.datastructures import State
from litestar.openapi.datastructures import ResponseSpec
from prometheus_client import CONTENT_TYPE_LATEST

from entrypoints.metrics import exposition

__all__ = ["HealthController"]


class HealthController(Controller):
    tags = ["operations"]

    @get("/health", operation_id="health", name="health", summary="The process is up")
    async def health(self) -> dict[str, str]:
        return {"status": "ok"}

    @get(
        "/ready",
        operation_id="ready",
        name="ready",
        summary="PostgreSQL and NATS answer",
        responses={
            503: ResponseSpec(
                dict[str, Any], description="Not ready: what is down", generate_examples=False
            )
        },
    )
    @inject
    async def ready(self, pool: FromDishka[asyncpg.Pool], state: State) -> Response[dict[str, Any]]:
        checks: dict[str, str] = {}
        try:
            await asyncio.wait_for(pool.fetchval("SELECT 1"), 2)
            checks["postgres"] = "ok"
        except (OSError, asyncpg.PostgresError, TimeoutError) as error:
            checks["postgres"] = f"down: {error}"
        nats = state.get("nats")
        if nats is None:
            checks["nats"] = "down: not connected"
        else:
            checks["nats"] = "ok" if nats.is_connected else "down: disconnected"
        for name, worker in state.get("workers", {}).items():
            checks[name] = "ok" if getattr(worker, "running", False) else "down: not running"
        ready = all(v == "ok" for v in checks.values())
        # Serving goes on while a read model is stuck or the projection worker restarts; the
        # problem is shown (a worker in this process also sets chorus_projection_failing).
        problems = {
            name: problem
            for name, worker in state.get("workers", {}).items()
            if (problem := getattr(worker, "problem", None))
        }
        return Response(
            {
                "status": "ready" if ready else "not ready",
                "checks": checks,
                **({"problems": problems} if problems else {}),
            },
            status_code=200 if ready else 503,
        )

    @get(
        "/metrics",
        operation_id="metrics",
        name="metrics",
        summary="Prometheus metrics",
        media_type=MediaType.TEXT,
        include_in_schema=True,
    )
    async def metrics(self) -> Response[bytes]:
        return Response(exposition(), media_type=CONTENT_TYPE_LATEST)
