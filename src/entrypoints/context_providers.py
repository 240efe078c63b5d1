"""Dishka providers of the customer's context: its reads and its query."""

from __future__ import annotations

import asyncpg
from dishka import Provider, Scope, provide

from adapters.postgres.customer_context import PostgresContextReads
from application.queries.customer_context import ContextQueries
from application.queries.customers import CustomerQueries
from ports.campaigns import CampaignReadModel
from ports.clock import Clock
from ports.customer_context import ContextReads
from ports.directory import Directory
from ports.enrollments import EnrollmentReadModel
from ports.inbox import InboxReadModel
from ports.segments import SegmentReadModel
from ports.unit_of_work import UnitsOfWork

__all__ = ["CustomerContextProvider"]


class CustomerContextProvider(Provider):
    """The customer's context, at APP scope."""

    scope = Scope.APP

    @provide
    def context_reads(self, pool: asyncpg.Pool) -> ContextReads:
        return PostgresContextReads(pool)

    @provide
    def context_queries(
        self,
        customers: CustomerQueries,
        reads: ContextReads,
        directory: Directory,
        segments: SegmentReadModel,
        enrollments: EnrollmentReadModel,
        campaigns: CampaignReadModel,
        inbox: InboxReadModel,
        uows: UnitsOfWork,
        clock: Clock,
    ) -> ContextQueries:
        return ContextQueries(
            customers, reads, directory, segments, enrollments, campaigns, inbox, uows, clock
        )
