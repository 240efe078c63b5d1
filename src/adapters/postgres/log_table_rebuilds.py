"""The tables written in the statement that appends their events, rebuilt from the log and
compared with the live ones: `messages` (`GET /v1/messages`, `GET /v1/reports/costs`),
`approvals` (`GET /v1/approvals`), `decisions` (where each decision's event lies, for
`GET /v1/decisions/{id}` and the story of a message), `identities` and `customer_merges` (whose
an identity is, and a merged customer's survivor), the definition listings (segments,
triggers, templates, campaigns, agents, teams), and routing's roster (`conversation_agents`,
`conversation_teams`, `conversation_holds`, and the `agent_loads` their trigger keeps).

No projection keeps them, so there is no position to rebuild up to: the streams and the live
table are read in one repeatable-read transaction, the snapshot in which both were committed
together. Each is rebuilt as the unit of work writes it: a listing's row from its aggregate
replayed; a hold's approval from `MessageHeld`, its verdict from the `ApprovalSettled` after it
and the decision that follows; a decision's place from its event; a conversation's holder
save by save (a save: its events of one transaction), as its upserts keep the kind it counts
as; the agents' loads counted save by save, as the holds' trigger counts them. The rebuilds go into
temporary tables, dropped at the transaction's end; the live tables are only read.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, cast

from adapters.postgres.codec import EventCodec
from adapters.postgres.conversation_roster import (
    HOLDS,
    ROSTER_AGENTS,
    ROSTER_TEAMS,
    agent_row,
    hold_row,
    team_row,
)
from adapters.postgres.listings import AGENTS, CAMPAIGNS, SEGMENTS, TEAMS, TEMPLATES, TRIGGERS
from adapters.postgres.messages import MESSAGES, message_row
from adapters.postgres.verified_log import streams_of
from domain.campaign.aggregate import Campaign
from domain.conversation.agents import Agent, Team
from domain.conversation.aggregate import Conversation
from domain.customer.aggregate import Customer
from domain.message.aggregate import Message
from domain.policy.decision import Effect
from domain.segments.aggregate import Segment
from domain.shared.topics import events_of
from domain.templates.aggregate import Template
from domain.triggers.aggregate import Trigger
from ports.campaigns import versions_written
from ports.verification import ReadModelComparison, TableComparison

if TYPE_CHECKING:
    from collections.abc import Sequence
    from uuid import UUID

    import asyncpg
    from eventsourcing.domain import Aggregate, CanMutateAggregate

    from adapters.postgres.event_store import SideTable
    from domain.shared.topics import StoredAs

__all__ = ["LOG_TABLES", "PostgresLogTableRebuilds"]

_APPROVAL_SETTLED = events_of(Customer)["ApprovalSettled"]
_BATCH = 5_000
_SCRATCH = "{table}__verify"


@dataclass(frozen=True, slots=True)
class _Table:
    """A live table, the columns its rebuild fills, and the row compared: what the write path
    and the log cannot tell apart (an empty note and none) compares as one."""

    name: str
    columns: tuple[str, ...]
    compared: str = ""

    @property
    def row(self) -> str:
        return self.compared or ", ".join(self.columns)


_INSERTED = re.compile(r"INSERT INTO (\w+) \(([^)]*)\)")


def _listed(table: SideTable) -> _Table:
    """The table a listing inserts into, and its columns."""
    found = _INSERTED.match(table.insert)
    assert found is not None, table.insert
    return _Table(found[1], tuple(c.strip() for c in found[2].split(",")))


_APPROVAL_COLUMNS = (
    "approval_id",
    "message_id",
    "customer_id",
    "rule_id",
    "reason",
    "team",
    "purpose",
    "channel",
    "origin",
    "held_at",
    "expires_at",
    "status",
    "settled_at",
    "settled_by",
    "note",
    "decision_id",
)
_APPROVALS = _Table(
    "approvals",
    _APPROVAL_COLUMNS,
    ", ".join("nullif(note, '')" if c == "note" else c for c in _APPROVAL_COLUMNS),
)
_IDENTITIES = _Table("identities", ("type", "value", "customer_id"))
_MERGES = _Table("customer_merges", ("merged_id", "survivor_id"))
_DECISIONS = _Table("decisions", ("decision_id", "message_id", "customer_id", "stream_version"))

_COMPARE = """
WITH live AS (SELECT ROW({row})::text AS row FROM {live}),
     rebuilt AS (SELECT ROW({row})::text AS row FROM {rebuilt}),
     only_live AS (SELECT row FROM live EXCEPT ALL SELECT row FROM rebuilt),
     only_rebuilt AS (SELECT row FROM rebuilt EXCEPT ALL SELECT row FROM live)
SELECT (SELECT count(*) FROM live), (SELECT count(*) FROM only_live),
       (SELECT count(*) FROM only_rebuilt),
       ARRAY(SELECT 'only in the live table: ' || row FROM only_live ORDER BY row LIMIT $1),
       ARRAY(SELECT 'only in its rebuild: ' || row FROM only_rebuilt ORDER BY row LIMIT $1)
"""


class _Rebuild(Protocol):
    """Rows of its tables from the streams of one type, a stream at a time."""

    def take(self, stream: Sequence[CanMutateAggregate[UUID]]) -> None: ...

    def ready(self, final: bool) -> dict[_Table, list[tuple[Any, ...]]]:
        """The rows that can be written now (all that are left, if `final`), given away."""
        ...


Row = Callable[[Any, "Sequence[CanMutateAggregate[UUID]]"], "tuple[Any, ...] | None"]
"""A listing's row for an aggregate replayed from its stream (None: not listed)."""


def _campaign_row(campaign: Any, stream: Sequence[CanMutateAggregate[UUID]]) -> Any:
    """As the campaigns listing writes it, its versions gathered from every save: here, from
    the whole stream (`versions || EXCLUDED.versions`: the last write of a version stands)."""
    row = CAMPAIGNS.row(campaign)
    if row is None:
        return None
    versions = {
        str(v.version): {"at": v.at.isoformat(), "by": v.by} for v in versions_written(stream)
    }
    return (*row[:6], json.dumps(versions), *row[7:])


def _row_of(row: Callable[[Any], tuple[Any, ...] | None]) -> Row:
    return lambda aggregate, _stream: row(aggregate)


class _ListingRows:
    """The listing's row of each aggregate of one type, replayed from its stream."""

    def __init__(self, kind: type[Aggregate], table: _Table, row: Row) -> None:
        self.kind = kind
        self.table = table
        self.row = row
        self.rows: list[tuple[Any, ...]] = []

    def take(self, stream: Sequence[CanMutateAggregate[UUID]]) -> None:
        aggregate: Any = None
        for event in stream:
            aggregate = event.mutate(aggregate)
        if isinstance(aggregate, self.kind):
            row = self.row(aggregate, stream)
            if row is not None:
                self.rows.append(row)

    def ready(self, final: bool) -> dict[_Table, list[tuple[Any, ...]]]:
        if not final and len(self.rows) < _BATCH:
            return {}
        rows, self.rows = self.rows, []
        return {self.table: rows}


@dataclass(slots=True)
class _DecisionRows:
    """Each decision's place; each hold's approval, settled by the verdict after it. A hold
    and its verdict may be on two customers' streams (merged in between): the approvals are
    put together once every stream is read."""

    decisions: list[tuple[Any, ...]] = field(default_factory=list)
    holds: dict[UUID, list[Any]] = field(default_factory=dict)
    verdicts: dict[UUID, tuple[Any, ...]] = field(default_factory=dict)

    def take(self, stream: Sequence[CanMutateAggregate[UUID]]) -> None:
        settled: Any = None  # the verdict just before, waiting for the decision it led to
        for event in stream:
            if isinstance(event, Customer.MessageDecided):
                self.decisions.append(
                    (
                        event.decision_id,
                        event.message_id,
                        event.originator_id,
                        event.originator_version,
                    )
                )
                if isinstance(event, Customer.MessageHeld):
                    self.holds[event.decision_id] = _approval(event)
                if settled is not None and settled.message_id == event.message_id:
                    self.verdicts[settled.approval_id] = (
                        settled.verdict,
                        settled.timestamp,
                        settled.by,
                        settled.note or None,
                        event.decision_id,
                    )
                settled = None
            elif isinstance(event, _APPROVAL_SETTLED):
                settled = event
            else:
                settled = None

    def ready(self, final: bool) -> dict[_Table, list[tuple[Any, ...]]]:
        found: dict[_Table, list[tuple[Any, ...]]] = {}
        if final or len(self.decisions) >= _BATCH:
            found[_DECISIONS], self.decisions = self.decisions, []
        if final:
            found[_APPROVALS] = [
                (*hold[:11], *self.verdicts.get(approval_id, ("pending", None, None, None, None)))
                for approval_id, hold in self.holds.items()
            ]
        return found


@dataclass(slots=True)
class _IdentityRows:
    """Whose each identity is, from each customer replayed (a merged customer's identities
    are the survivor's; an erased customer's are gone); and each merged customer's survivor,
    at the end of the chain, once every stream is read."""

    identities: list[tuple[Any, ...]] = field(default_factory=list)
    merged_into: dict[UUID, UUID] = field(default_factory=dict)

    def take(self, stream: Sequence[CanMutateAggregate[UUID]]) -> None:
        customer: Any = None
        for event in stream:
            customer = event.mutate(customer)
        if not isinstance(customer, Customer):
            return
        if customer.merged_into is not None:
            self.merged_into[customer.id] = customer.merged_into
        for identity in customer.identities:
            self.identities.append((identity.type, identity.value, customer.id))

    def ready(self, final: bool) -> dict[_Table, list[tuple[Any, ...]]]:
        found: dict[_Table, list[tuple[Any, ...]]] = {}
        if final or len(self.identities) >= _BATCH:
            found[_IDENTITIES], self.identities = self.identities, []
        if final:
            found[_MERGES] = [
                (merged, self._survivor(survivor)) for merged, survivor in self.merged_into.items()
            ]
        return found

    def _survivor(self, customer_id: UUID) -> UUID:
        seen = {customer_id}
        while (next_one := self.merged_into.get(customer_id)) is not None and next_one not in seen:
            seen.add(next_one)
            customer_id = next_one
        return customer_id


_HOLDS = _listed(HOLDS)
_LOADS = _Table("agent_loads", ("agent", "kind", "held"))
"""An agent's load as the holds' trigger counts it (migration 0024): a row for each agent and
kind ever counted, 0 once none is held. Its `last_assigned_at` (when the trigger last counted
one) is not compared: which count was last is the order in which saves of different
conversations committed, which the log does not keep."""
_HOLD_AGENT, _HOLD_KIND, _HOLD_OPEN = 3, 4, 5  # in `hold_row`
_SAVES = """
SELECT stream_id, max(version) FROM events WHERE topic LIKE $1 GROUP BY stream_id, transaction_id
"""


def _upserted(old: tuple[Any, ...] | None, new: tuple[Any, ...]) -> tuple[Any, ...]:
    """A holder's row after `HOLDS`'s upsert of `new` over `old`: the kind a conversation counts
    as stays the one its agent took it as, while they hold it open."""
    if old is None or not _held(old) or old[_HOLD_AGENT] != new[_HOLD_AGENT]:
        return new
    return (*new[:_HOLD_KIND], old[_HOLD_KIND], *new[_HOLD_KIND + 1 :])


def _held(row: tuple[Any, ...]) -> bool:
    """Whether a holder's row counts on its agent's load: open, with an agent."""
    return bool(row[_HOLD_OPEN]) and row[_HOLD_AGENT] is not None


@dataclass(slots=True)
class _HoldRows:
    """Each conversation's holder, its row upserted as each save upserts it (after the last
    event of each save: `saved`); and the agents' loads, counted save by save as the holds'
    trigger counts them."""

    saved: set[tuple[UUID, int]] = field(default_factory=set)
    """The stream and version of the last event of each save: a save is one transaction."""
    holds: list[tuple[Any, ...]] = field(default_factory=list)
    loads: dict[tuple[str, str], int] = field(default_factory=dict)

    def take(self, stream: Sequence[CanMutateAggregate[UUID]]) -> None:
        conversation: Any = None
        row: tuple[Any, ...] | None = None
        for event in stream:
            conversation = event.mutate(conversation)
            if (event.originator_id, event.originator_version) not in self.saved:
                continue  # not the last event of its save: the row is written once for all
            if isinstance(conversation, Conversation):
                new = _upserted(row, hold_row(conversation))
                self._count(row, new)
                row = new
        if row is not None:
            self.holds.append(row)

    def _count(self, old: tuple[Any, ...] | None, new: tuple[Any, ...]) -> None:
        """What `conversation_hold_counted` does to the loads when `old` becomes `new`."""
        before = None if old is None or not _held(old) else (old[_HOLD_AGENT], old[_HOLD_KIND])
        after = (new[_HOLD_AGENT], new[_HOLD_KIND]) if _held(new) else None
        if before == after:
            return
        if before is not None:
            self.loads[before] -= 1
        if after is not None:
            self.loads[after] = self.loads.get(after, 0) + 1

    def ready(self, final: bool) -> dict[_Table, list[tuple[Any, ...]]]:
        found: dict[_Table, list[tuple[Any, ...]]] = {}
        if final or len(self.holds) >= _BATCH:
            found[_HOLDS], self.holds = self.holds, []
        if final:
            found[_LOADS] = [(agent, kind, held) for (agent, kind), held in self.loads.items()]
        return found


def _approval(held: Customer.MessageDecided) -> list[Any]:
    """A hold's approval as `application.approvals.held.held_for_approval` opens it."""
    rule = next((r for r in held.fired if r.effect is Effect.HELD), None)
    return [
        held.decision_id,
        held.message_id,
        held.originator_id,
        None if rule is None else rule.rule_id,
        None if rule is None else rule.reason,
        held.request.team,
        str(held.request.purpose),
        None if held.channel is None else str(held.channel),
        held.origin,
        held.timestamp,
        held.defer_until,
    ]


@dataclass(frozen=True, slots=True)
class _LogTables:
    """Tables rebuilt from the streams of one type (`topics`: their topics, `LIKE`)."""

    name: str
    topics: str
    tables: tuple[_Table, ...]
    rebuild: Callable[[], _Rebuild]


def topics_of(kind: type[Aggregate]) -> str:
    """The topics of an aggregate type's events, as a `LIKE` pattern."""
    stored: StoredAs = vars(kind)["stored_as"]
    return stored.name + ".%"


def _listing(name: str, kind: type[Aggregate], table: SideTable, row: Row) -> _LogTables:
    listed = _listed(table)
    return _LogTables(name, topics_of(kind), (listed,), lambda: _ListingRows(kind, listed, row))


LOG_TABLES = (
    _listing("messages", Message, MESSAGES, _row_of(message_row)),
    _LogTables(
        "decisions and approvals",
        topics_of(Customer),
        (_DECISIONS, _APPROVALS),
        _DecisionRows,
    ),
    _LogTables("identities and merges", topics_of(Customer), (_IDENTITIES, _MERGES), _IdentityRows),
    _listing("segments", Segment, SEGMENTS.table, _row_of(SEGMENTS.row)),
    _listing("triggers", Trigger, TRIGGERS.table, _row_of(TRIGGERS.row)),
    _listing("templates", Template, TEMPLATES.table, _row_of(TEMPLATES.row)),
    _listing("campaigns", Campaign, CAMPAIGNS.table, _campaign_row),
    _listing("agents", Agent, AGENTS.table, _row_of(AGENTS.row)),
    _listing("teams", Team, TEAMS.table, _row_of(TEAMS.row)),
    # Routing's roster (migration 0024): who answers, and what each agent holds.
    _listing("roster agents", Agent, ROSTER_AGENTS, _row_of(agent_row)),
    _listing("roster teams", Team, ROSTER_TEAMS, _row_of(team_row)),
    _LogTables(
        "conversation holds and agent loads", topics_of(Conversation), (_HOLDS, _LOADS), _HoldRows
    ),
)
"""Every table written with its events that an answer is read from (docs/audit.md)."""


class PostgresLogTableRebuilds:
    """The tables written with their events, each rebuilt from the log in the snapshot it is
    read in, and compared with the live one."""

    def __init__(self, pool: asyncpg.Pool, codec: EventCodec | None = None) -> None:
        self.pool = pool
        self.codec = codec or EventCodec()
        self.kinds = {kind.name: kind for kind in LOG_TABLES}

    def names(self) -> list[str]:
        return list(self.kinds)

    async def compare(self, name: str, shown: int) -> ReadModelComparison:
        kind = self.kinds[name]
        rebuild: _Rebuild = kind.rebuild()
        async with self.pool.acquire() as proxy:
            conn = cast("asyncpg.Connection", proxy)
            async with conn.transaction(isolation="repeatable_read"):
                for table in kind.tables:
                    await conn.execute(
                        f"CREATE TEMPORARY TABLE {_SCRATCH.format(table=table.name)}"
                        f" (LIKE {table.name}) ON COMMIT DROP"
                    )
                if isinstance(rebuild, _HoldRows):
                    rebuild.saved = {
                        (row[0], row[1]) for row in await conn.fetch(_SAVES, kind.topics)
                    }
                events = 0
                async for stream in streams_of(conn, self.codec, kind.topics):
                    rebuild.take(stream)
                    events += len(stream)
                    await self._write(conn, rebuild.ready(final=False))
                await self._write(conn, rebuild.ready(final=True))
                tables = [await self._table(conn, table, shown) for table in kind.tables]
        return ReadModelComparison(name, events, tables)

    async def _write(
        self, conn: asyncpg.Connection, rows: dict[_Table, list[tuple[Any, ...]]]
    ) -> None:
        for table, records in rows.items():
            if records:
                await conn.copy_records_to_table(
                    _SCRATCH.format(table=table.name), records=records, columns=table.columns
                )

    async def _table(self, conn: asyncpg.Connection, table: _Table, shown: int) -> TableComparison:
        query = _COMPARE.format(
            row=table.row, live=table.name, rebuilt=_SCRATCH.format(table=table.name)
        )
        row = await conn.fetchrow(query, shown)
        assert row is not None
        return TableComparison(table.name, row[0], row[1], row[2], [*row[3], *row[4]])
