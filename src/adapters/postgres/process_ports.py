"""The ports processes work through, bound to one connection: the runner's, so what a process
records commits with its place in the log."""

from __future__ import annotations

from typing import TYPE_CHECKING

from adapters.postgres.campaign_enrollments import (
    PostgresCampaignStates,
    PostgresCampaignTimers,
    PostgresCustomerSegments,
    PostgresEnrollmentIndex,
    PostgresStreams,
)
from adapters.postgres.campaign_schedules import PostgresCampaignSchedules
from adapters.postgres.event_store import PostgresEventStore
from adapters.postgres.listings import LISTINGS, listed_rows
from adapters.postgres.segment_states import (
    PostgresCustomerFacts,
    PostgresMembershipStates,
    PostgresSegmentsInForce,
    SegmentConditions,
)
from adapters.postgres.trigger_states import PostgresTriggerStates

if TYPE_CHECKING:
    from collections.abc import Collection, Mapping
    from typing import Any
    from uuid import UUID

    import asyncpg
    from eventsourcing.domain import Aggregate, CanMutateAggregate

    from adapters.postgres.listings import Listing


__all__ = ["PostgresAggregateSaves", "PostgresEventLog", "PostgresProcessPorts", "ProcessPortsOn"]


class PostgresEventLog:
    """Appends through the event store, in one statement per batch."""

    def __init__(self, conn: asyncpg.Connection, store: PostgresEventStore) -> None:
        self.conn = conn
        self.store = store

    async def append(self, events: Collection[CanMutateAggregate[UUID]]) -> None:
        await self.store.append(self.conn, events=events)

    async def append_new(self, events: Collection[CanMutateAggregate[UUID]]) -> int:
        return await self.store.append_new(self.conn, events)


class PostgresAggregateSaves:
    """Saves aggregates as the unit of work's commit does (`listed_rows`): their events and the
    rows of their listings in one statement, on the runner's connection. A conversation's
    holder is upserted with its events, and the holds' trigger moves its agent's load."""

    def __init__(
        self,
        conn: asyncpg.Connection,
        store: PostgresEventStore,
        listings: Mapping[type[Aggregate], tuple[Listing[Any], ...]] = LISTINGS,
    ) -> None:
        self.conn = conn
        self.store = store
        self.listings = listings

    async def save(self, aggregates: Collection[Aggregate]) -> None:
        rows = listed_rows(aggregates, self.listings)  # before the events are collected
        await self.store.append(self.conn, aggregates, side_rows=rows)


class PostgresProcessPorts:
    """Every process's ports on one connection; each process reads the ones it names."""

    def __init__(
        self, conn: asyncpg.Connection, store: PostgresEventStore, conditions: SegmentConditions
    ) -> None:
        self.events = PostgresEventLog(conn, store)
        self.trigger_states = PostgresTriggerStates(conn)
        self.segments = PostgresSegmentsInForce(conn, conditions)
        self.customer_facts = PostgresCustomerFacts(conn)
        self.membership_states = PostgresMembershipStates(conn)
        self.streams = PostgresStreams(conn, store)
        self.campaign_states = PostgresCampaignStates(conn)
        self.enrollment_index = PostgresEnrollmentIndex(conn)
        self.campaign_timers = PostgresCampaignTimers(conn)
        self.campaign_schedules = PostgresCampaignSchedules(conn)
        self.customer_segments = PostgresCustomerSegments(conn)


class ProcessPortsOn:
    """Binds the ports to a connection; what outlives a page (decoded conditions) stays here."""

    def __init__(self, store: PostgresEventStore | None = None) -> None:
        self.store = store or PostgresEventStore()
        self.conditions = SegmentConditions()

    def __call__(self, conn: asyncpg.Connection) -> PostgresProcessPorts:
        return PostgresProcessPorts(conn, self.store, self.conditions)
