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

from adapters.postgres.projections import stuck_projections
from entrypoints.metrics import exposition
from entrypoints.settings import Settings

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
        summary="PostgreSQL and NATS answer, every worker runs, no projection is stuck",
        responses={
            503: ResponseSpec(
                dict[str, Any], description="Not ready: what is down", generate_examples=False
            )
        },
    )
    @inject
    async def ready(
        self, pool: FromDishka[asyncpg.Pool], settings: FromDishka[Settings], state: State
    ) -> Response[dict[str, Any]]:
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
        if checks["postgres"] == "ok":
            await _check_projections(pool, settings, checks)
        ready = all(v == "ok" for v in checks.values())
        # A projection worker restarted (with no projection stuck) leaves the service ready;
        # the restarts are shown.
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


async def _check_projections(
    pool: asyncpg.Pool, settings: Settings, checks: dict[str, str]
) -> None:
    """A projection failing, or with events parked in the last CHORUS_READY_PARKED_AGE
    seconds, makes the service not ready (ADR 0007): what it serves from read models is stale
    or incomplete. Read from the database, so it holds wherever the projections run."""
    try:
        stuck = await asyncio.wait_for(stuck_projections(pool, settings.ready_parked_age), 2)
    except (OSError, asyncpg.PostgresError, TimeoutError) as error:
        checks["projections"] = f"unknown: {error}"
        return
    if stuck:
        found = "; ".join(str(projection) for projection in stuck)
        running = checks.get("projections", "ok")
        checks["projections"] = f"stuck: {found}" if running == "ok" else f"{running}; {found}"
