"""Dishka providers of the inbox, the SLA timers and the replies' statuses: the projection and
its reads, the live stream's changes, the SLA process, its lane member and its timer runs, and
the reply statuses process and its lane member."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
from dishka import Provider, Scope, provide

from adapters.postgres.inbox import InboxListing, PostgresInbox, PostgresInboxChanges
from adapters.postgres.reply_statuses import ReplyStatusProjection
from adapters.postgres.sla_timers import SlaTimerProjection, SlaTimerRuns
from application.processes.reply_statuses import ReplyStatuses
from application.processes.sla_timers import SlaTimers
from application.queries.customer_context import ContextQueries
from application.queries.inbox import InboxQueries
from ports.clock import Clock
from ports.inbox import InboxChanges, InboxReadModel
from ports.unit_of_work import UnitsOfWork

__all__ = ["InboxProvider"]


class InboxProvider(Provider):
    """The inbox read side and the SLA timers, at APP scope."""

    scope = Scope.APP

    @provide
    def inbox_listing(self) -> InboxListing:
        return InboxListing()

    @provide
    def inbox_read_model(self, pool: asyncpg.Pool) -> InboxReadModel:
        return PostgresInbox(pool)

    @provide
    async def inbox_changes(self, pool: asyncpg.Pool) -> AsyncIterator[InboxChanges]:
        changes = PostgresInboxChanges(pool)
        yield changes
        await changes.close()

    @provide
    async def inbox_queries(
        self,
        inbox: InboxReadModel,
        changes: InboxChanges,
        uows: UnitsOfWork,
        context: ContextQueries,
        clock: Clock,
    ) -> InboxQueries:
        return InboxQueries(inbox, changes, uows, context, clock)

    @provide
    def sla_timers(self, clock: Clock) -> SlaTimers:
        return SlaTimers(clock)

    @provide
    def sla_timer_projection(self, process: SlaTimers) -> SlaTimerProjection:
        return SlaTimerProjection(process)

    @provide
    def sla_timer_runs(self, pool: asyncpg.Pool, process: SlaTimers, clock: Clock) -> SlaTimerRuns:
        return SlaTimerRuns(pool, process, clock)

    @provide
    def reply_status_projection(self) -> ReplyStatusProjection:
        return ReplyStatusProjection(ReplyStatuses())
