"""Runs the segment evaluator's timers: memberships that fall due with time alone."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from adapters.postgres.projections import LOCK_POSITION

if TYPE_CHECKING:
    from collections.abc import Callable

    import asyncpg

    from ports.segment_evaluation import SegmentEvaluationPorts, TimedEvaluation

__all__ = ["SegmentTimers"]


class SegmentTimers:
    """The durable scheduler's work: re-evaluates memberships that fall due with time, in a
    transaction that takes turns with the evaluator's pages."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        evaluator: TimedEvaluation,
        ports: Callable[[asyncpg.Connection], SegmentEvaluationPorts],
    ) -> None:
        self.pool = pool
        self.evaluator = evaluator
        self.ports = ports

    async def __call__(self, batch: int) -> int:
        async with self.pool.acquire() as proxy, proxy.transaction():
            conn = cast("asyncpg.Connection", proxy)
            # The evaluator's pages hold this lock while they run.
            locked = await conn.fetchrow(LOCK_POSITION, self.evaluator.name)
            if locked is None or locked["position"] is None:
                return 0
            return await self.evaluator.due(self.ports(conn), batch)
