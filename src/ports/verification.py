"""What `chorus audit verify` reads: the log in one consistent snapshot, and each read model
set beside its rebuild."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from contextlib import AbstractAsyncContextManager
    from uuid import UUID

    from eventsourcing.domain import CanMutateAggregate

__all__ = [
    "LogSize",
    "LogSnapshot",
    "ReadModelComparison",
    "ReadModelRebuilds",
    "TableComparison",
    "VerifiedLog",
]


@dataclass(frozen=True, slots=True)
class LogSize:
    """How many events each pass of the verification reads."""

    events: int  # the whole log
    customer_events: int
    messages: int  # `Message.Queued`: one a message


class LogSnapshot(Protocol):
    """The log as it stood when the snapshot was taken: nothing recorded later shows."""

    async def size(self) -> LogSize: ...

    async def rule_book(self) -> list[CanMutateAggregate[UUID]]:
        """The rule book's stream: every published rule set."""
        ...

    def customer_streams(self) -> AsyncIterator[list[CanMutateAggregate[UUID]]]:
        """Each customer's stream whole, oldest event first, one customer at a time."""
        ...

    def queued_messages(self) -> AsyncIterator[CanMutateAggregate[UUID]]:
        """Every `Message.Queued`: each message's first event, naming its decision."""
        ...


class VerifiedLog(Protocol):
    def snapshot(self) -> AbstractAsyncContextManager[LogSnapshot]:
        """The log read in one snapshot, for as long as the context lasts."""
        ...


@dataclass(frozen=True, slots=True)
class TableComparison:
    """One table of a read model against its rebuild: rows only the live table holds, rows
    only the rebuild holds, and the first of each as text."""

    table: str
    rows: int  # in the live table
    only_live: int
    only_rebuilt: int
    samples: list[str] = field(default_factory=list)

    @property
    def equal(self) -> bool:
        return self.only_live == 0 and self.only_rebuilt == 0


@dataclass(frozen=True, slots=True)
class ReadModelComparison:
    name: str
    events: int  # applied to the rebuild
    tables: list[TableComparison]


class ReadModelRebuilds(Protocol):
    """Each read model rebuilt beside the live one, up to the same place in the log, and
    compared; the live tables are only read."""

    def names(self) -> list[str]:
        """The read models that can be rebuilt (processes record facts and have none)."""
        ...

    async def compare(self, name: str, shown: int) -> ReadModelComparison:
        """Rebuilds `name` into scratch tables and compares them with the live ones, showing
        at most `shown` differing rows of each table; the scratch tables are dropped."""
        ...
