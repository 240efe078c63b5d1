"""The unit of work on PostgreSQL: repositories and side indexes on one connection, one commit.

BEGIN is sent only before the first statement that writes apart from the commit's append (an
identity claimed, a row of a side index): reads go out before it, each on its own snapshot as
it would have been inside a READ COMMITTED transaction, and a command whose writes are its
events and side rows commits them in one statement, atomically on its own, with no BEGIN and
COMMIT around it. Nothing is locked by a read: a racing writer is caught by a stream's version
key, an identity's or an agent's capacity when this commits, as before (ADR 0026).
"""

from __future__ import annotations

import asyncio
import weakref
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, cast

import asyncpg

from adapters.postgres.aggregate_cache import AggregateCache
from adapters.postgres.approvals import PostgresApprovals
from adapters.postgres.conversation_roster import over_capacity
from adapters.postgres.decision_index import PostgresDecisionIndex
from adapters.postgres.deferrals import PostgresDeferrals
from adapters.postgres.event_store import PostgresEventStore
from adapters.postgres.identity_index import PostgresIdentityIndex
from adapters.postgres.listings import LISTINGS, listed_rows
from adapters.postgres.messages import OUTBOX
from adapters.postgres.outbox import PostgresOutbox
from adapters.postgres.repository import PostgresRepository
from adapters.postgres.request_keys import PostgresRequestKeys
from domain.customer.aggregate import Customer
from ports.unit_of_work import ConcurrencyConflict

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Collection, Mapping
    from uuid import UUID

    from asyncpg.transaction import Transaction
    from eventsourcing.domain import Aggregate, CanMutateAggregate

    from adapters.postgres.event_store import SideTable
    from adapters.postgres.listings import Listing
    from adapters.postgres.repository import A

__all__ = ["PostgresUnitOfWork", "PostgresUnitsOfWork"]


class PostgresUnitOfWork:
    """One unit of work; its pending events and side rows are appended at commit."""

    def __init__(
        self,
        conn: asyncpg.Connection,
        events: PostgresEventStore,
        cache: AggregateCache,
        locks: weakref.WeakValueDictionary[UUID, asyncio.Lock],
        cached: tuple[type[Aggregate], ...] = (Customer,),
        listings: Mapping[type[Aggregate], tuple[Listing[Any], ...]] = LISTINGS,
    ) -> None:
        self.events = events
        self.cache = cache
        self.cached = cached
        self.listings = listings
        self._conn = conn
        self._locks = locks
        self._held: list[asyncio.Lock] = []
        self._transaction: Transaction | None = None
        self._repositories: dict[type[Aggregate], PostgresRepository[Any]] = {}
        self._identities: PostgresIdentityIndex | None = None
        self._decisions: PostgresDecisionIndex | None = None
        self._requests: PostgresRequestKeys | None = None
        self._deferrals: PostgresDeferrals | None = None
        self._outbox: PostgresOutbox | None = None
        self._approvals: PostgresApprovals | None = None
        self.lent: dict[UUID, Aggregate] = {}
        self.to_save: dict[UUID, Aggregate] = {}
        self.to_record: list[CanMutateAggregate[UUID]] = []
        # Rows for other tables, written in the events' statement; the first table used
        # comes first in it.
        self.side_rows: dict[SideTable, list[tuple[Any, ...]]] = {}
        # The topics of the events appended, known once committed: the lanes that read one
        # of them are woken, and no other.
        self.written: frozenset[str] = frozenset()

    def repository(self, kind: type[A]) -> PostgresRepository[A]:
        found = self._repositories.get(kind)
        if found is None:
            found = self._repositories[kind] = PostgresRepository(self, kind)
        return found

    @property
    def identities(self) -> PostgresIdentityIndex:
        if self._identities is None:
            self._identities = PostgresIdentityIndex(self)
        return self._identities

    @property
    def decisions(self) -> PostgresDecisionIndex:
        if self._decisions is None:
            self._decisions = PostgresDecisionIndex(self)
        return self._decisions

    @property
    def requests(self) -> PostgresRequestKeys:
        if self._requests is None:
            self._requests = PostgresRequestKeys(self)
        return self._requests

    @property
    def deferrals(self) -> PostgresDeferrals:
        if self._deferrals is None:
            self._deferrals = PostgresDeferrals(self)
        return self._deferrals

    @property
    def outbox(self) -> PostgresOutbox:
        if self._outbox is None:
            self._outbox = PostgresOutbox(self)
        return self._outbox

    @property
    def approvals(self) -> PostgresApprovals:
        if self._approvals is None:
            self._approvals = PostgresApprovals(self)
        return self._approvals

    # what the repositories and side indexes share

    async def begun(self) -> asyncpg.Connection:
        """The connection, inside the transaction (begun now if it was not yet)."""
        if self._transaction is None:
            self._transaction = self._conn.transaction()
            await self._transaction.start()
        return self._conn

    @property
    def reader(self) -> asyncpg.Connection:
        """The connection for a plain read: outside a transaction if none was begun, since a
        racing writer is caught by a key when this commits."""
        return self._conn

    def rows_for(self, table: SideTable) -> list[tuple[Any, ...]]:
        found = self.side_rows.get(table)
        if found is None:
            found = self.side_rows[table] = []
        return found

    async def queue_for(self, ids: Collection[UUID]) -> None:
        """Commands on one aggregate in this process wait their turn instead of racing.

        Only a unit of work that holds no lock yet waits, so two can never wait on each
        other; across processes the stream's version key still decides.
        """
        if self._held:
            return
        for aggregate_id in sorted(ids):
            lock = self._locks.get(aggregate_id)
            if lock is None:
                lock = asyncio.Lock()
                self._locks[aggregate_id] = lock
            await lock.acquire()
            self._held.append(lock)

    # the end

    @property
    def enqueues(self) -> bool:
        return bool(self.side_rows.get(OUTBOX))

    async def commit(self) -> None:
        kinds = {type(event) for event in self.to_record}
        for aggregate in self.to_save.values():
            kinds.update(type(event) for event in aggregate.pending_events)
        # Listed at commit, not when added: the row shows the state the events leave.
        for table, rows in listed_rows(self.to_save.values(), self.listings).items():
            self.rows_for(table).extend(rows)
        await self.events.append(self._conn, self.to_save.values(), self.to_record, self.side_rows)
        if self._transaction is not None:
            await self._transaction.commit()
        topic_of = self.events.codec.topics.topic_of
        self.written = frozenset(topic_of(kind) for kind in kinds)

    async def rollback(self) -> None:
        if self._transaction is not None:
            await self._transaction.rollback()

    def committed(self) -> None:
        for aggregate in (*self.lent.values(), *self.to_save.values()):
            if isinstance(aggregate, self.cached):
                self.cache.give_back(aggregate)

    def release(self) -> None:
        while self._held:
            self._held.pop().release()

    def close(self) -> None:
        """Releases its locks and lets go of its repositories and side indexes, which point
        back at it: once its caller drops it, it and what it holds (a broadcast's thousand
        customers, messages and side rows) are freed at once, not left as a cycle for the
        collector's next full pass, walked by every collection until then."""
        self.release()
        self._repositories = {}
        self._identities = None
        self._decisions = None
        self._requests = None
        self._deferrals = None
        self._outbox = None
        self._approvals = None


class PostgresUnitsOfWork:
    """Opens units of work on connections of the pool; aggregates of the `cached` types are
    kept in memory between commands, and commands on one aggregate queue in this process."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        events: PostgresEventStore | None = None,
        cache: AggregateCache | None = None,
        on_enqueued: Callable[[], None] | None = None,
        on_committed: Callable[[frozenset[str]], None] | None = None,
        cached: tuple[type[Aggregate], ...] = (Customer,),
        listings: Mapping[type[Aggregate], tuple[Listing[Any], ...]] = LISTINGS,
    ) -> None:
        self.pool = pool
        self.events = events or PostgresEventStore()
        self.cache = cache or AggregateCache()
        self.on_enqueued = on_enqueued  # told after a commit that put messages in the outbox
        # told after every commit that appended events, with the topics it wrote
        self.on_committed = on_committed
        self.cached = cached
        self.listings = listings  # read tables written with their aggregates' events
        self.locks: weakref.WeakValueDictionary[UUID, asyncio.Lock] = weakref.WeakValueDictionary()

    @asynccontextmanager
    async def __call__(self) -> AsyncIterator[PostgresUnitOfWork]:
        async with self.pool.acquire() as conn:
            uow = PostgresUnitOfWork(
                cast("asyncpg.Connection", conn),
                self.events,
                self.cache,
                self.locks,
                self.cached,
                self.listings,
            )
            try:
                yield uow
                await uow.commit()
                uow.committed()
                if self.on_enqueued is not None and uow.enqueues:
                    self.on_enqueued()
                if self.on_committed is not None and uow.written:
                    self.on_committed(uow.written)
            except (asyncpg.DeadlockDetectedError, asyncpg.SerializationError) as error:
                await uow.rollback()
                raise ConcurrencyConflict(str(error)) from error
            except asyncpg.CheckViolationError as error:
                await uow.rollback()
                refused = over_capacity(error)  # an agent's load, checked by the database
                if refused is None:
                    raise
                raise refused from error
            except BaseException:
                await uow.rollback()
                raise
            finally:
                uow.close()
