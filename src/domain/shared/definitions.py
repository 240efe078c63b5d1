"""What people define under a key, by name, in versions: the lifecycle segments and triggers share.

A definition is defined, redefined (a new version, unless nothing changed), deleted and restored
by being redefined. What it defines (a segment's condition, a trigger's `on`) is each subclass's
own, and so are the events that carry it, `Defined` and `Redefined`. `Deleted` and `Restored` are
declared here once: eventsourcing declares them again on each subclass, so that their topics
name the subclass (`domain.segments.aggregate:Segment.Deleted`), as stored events do.
"""

from __future__ import annotations

from datetime import datetime  # events carry these types; eventsourcing resolves them at run time
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from eventsourcing.domain import Aggregate

__all__ = ["KeyedDefinition"]

D = TypeVar("D")


class KeyedDefinition(Aggregate, Generic[D]):
    """A named, described definition of a `D` under a key; each change is a new version.

    A subclass keeps its `D` under a name of its own, says which in `definition`, and records
    a change with its own `Redefined` event, `_redefined`, whose arguments come in this order.
    """

    if TYPE_CHECKING:  # set by the subclass's `Defined`; not dataclass fields of the aggregate
        key: str
        name: str
        description: str
        number: int
        deleted: bool
        changed_at: datetime

    class Deleted(Aggregate.Event):
        author: str

        def apply(self, aggregate: KeyedDefinition[Any]) -> None:
            aggregate.deleted = True
            aggregate.changed_at = self.timestamp

    class Restored(Aggregate.Event):
        author: str

        def apply(self, aggregate: KeyedDefinition[Any]) -> None:
            aggregate.deleted = False

    @property
    def definition(self) -> D:
        """The `D` in force."""
        raise NotImplementedError

    def same_as(self, name: str, description: str, definition: D) -> bool:
        return (self.name, self.description, self.definition) == (name, description, definition)

    def redefine(
        self, name: str, description: str, definition: D, author: str, at: datetime
    ) -> bool:
        """A new version, or nothing when it is the same as the one in force."""
        if self.deleted:
            self.trigger_event(self.Restored, timestamp=at, author=author)
        elif self.same_as(name, description, definition):
            return False
        self._redefined(at, name, description, definition, author)
        return True

    def delete(self, author: str, at: datetime) -> bool:
        if self.deleted:
            return False
        self.trigger_event(self.Deleted, timestamp=at, author=author)
        return True

    def _redefined(
        self, timestamp: datetime, name: str, description: str, definition: D, author: str
    ) -> None:
        """The subclass's `Redefined` event: `@event("Redefined")` on a method of these
        arguments, its `D` under its own name."""
        raise NotImplementedError
