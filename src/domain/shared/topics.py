"""Stable names for stored events: what a class is stored as, wherever its module lives.

An aggregate declares the name of its stream type once, `stored_as = StoredAs("...")`; each of
its events is stored as `<that name>.<event name>`. The names stored before this registry were
eventsourcing's topics (`domain.customer.aggregate:Customer.Registered`), so aggregates declare
those prefixes, and moving a class changes nothing stored. An event renamed later declares its
old name in `renamed`, and old events read as the renamed class.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from eventsourcing.domain import CanInitAggregate, CanMutateAggregate

from domain.shared.personal import PersonalFields, PersonalPath

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

__all__ = ["StoredAs", "TopicRegistry", "UnknownTopic", "events_of"]


class UnknownTopic(LookupError):
    """No event class is stored under that name."""

    def __init__(self, topic: str, why: str) -> None:
        super().__init__(f"no event class is stored as {topic!r}: {why}")
        self.topic = topic


_UNDECLARED = (
    "declare its aggregate in the catalog, or its old name in its aggregate's "
    "`StoredAs(renamed=...)`"
)
_DOCUMENT = "it is stored as a document, read as plain JSON"


@dataclass(frozen=True, slots=True)
class StoredAs:
    """The stored name of an aggregate's stream type, and the old names of its renamed events."""

    name: str
    renamed: Mapping[str, str] = field(default_factory=dict)
    """Old event name -> the event's name now, both without the stream type's name."""

    def topic(self, event_name: str) -> str:
        """The stored name of one of the stream type's events."""
        return f"{self.name}.{event_name}"


def _declared(aggregate: type) -> StoredAs:
    declared = aggregate.__dict__.get("stored_as")
    if not isinstance(declared, StoredAs):
        msg = f"{aggregate.__qualname__} declares no `stored_as = StoredAs(...)`"
        raise TypeError(msg)
    return declared


def events_of(aggregate: type) -> dict[str, type[CanMutateAggregate[Any]]]:
    """The event classes an aggregate records, by name: its own, without the bases eventsourcing
    gives every aggregate (`Event`; `Created`, unless the aggregate's `__init__` records it)."""
    declared = [
        value
        for value in vars(aggregate).values()
        if isinstance(value, type) and issubclass(value, CanMutateAggregate)
    ]
    leaves = [e for e in declared if not any(o is not e and issubclass(o, e) for o in declared)]
    creates = [e for e in leaves if issubclass(e, CanInitAggregate) and e.__name__ != "Created"]
    # Built only by its events (a membership, a firing): no __init__ records a `Created`.
    unused_created = bool(creates) or "__init__" not in vars(aggregate)
    prefix = aggregate.__qualname__ + "."
    return {
        e.__qualname__.removeprefix(prefix): e
        for e in leaves
        if not (unused_created and e.__name__ == "Created")
    }


class TopicRegistry:
    """The stored names of the aggregates' stream types and events, both ways.

    `documents` are stored names whose payload is a document kept as it came (a received
    signal), with no event class.
    """

    def __init__(
        self,
        aggregates: Iterable[type],
        documents: Iterable[str] = (),
        personal_documents: Mapping[str, tuple[str, ...]] | None = None,
    ) -> None:
        self._names: dict[type, str] = {}
        self._classes: dict[str, type] = {}
        self._events: set[str] = set()
        self._personal: dict[str, tuple[PersonalPath, ...]] = {}
        self.documents = frozenset(documents)
        for document, paths in (personal_documents or {}).items():
            if document not in self.documents:
                msg = f"personal fields of {document!r}: no such document"
                raise ValueError(msg)
            self._personal[document] = tuple(PersonalPath.parse(p) for p in paths)
        for aggregate in aggregates:
            declared = _declared(aggregate)
            self._name(aggregate, declared.name)
            events = events_of(aggregate)
            personal = aggregate.__dict__.get("personal", PersonalFields({}))
            for name in personal.paths:
                if name not in events:
                    msg = f"{aggregate.__qualname__} declares personal fields of {name!r}: no such event"
                    raise ValueError(msg)
            for name, cls in events.items():
                self._name(cls, declared.topic(name))
                self._events.add(declared.topic(name))
                if personal.of(name):
                    self._personal[declared.topic(name)] = personal.of(name)
            for old, new in declared.renamed.items():
                if new not in events:
                    msg = f"{aggregate.__qualname__} renames {old!r} to {new!r}: no such event"
                    raise ValueError(msg)
                self._claim(declared.topic(old), events[new])
                self._events.add(declared.topic(old))
                if personal.of(new):
                    self._personal[declared.topic(old)] = personal.of(new)
        for taken in self.documents & self._classes.keys():
            msg = f"{taken!r} names both a document and {self._classes[taken].__qualname__}"
            raise ValueError(msg)

    def _name(self, cls: type, topic: str) -> None:
        self._claim(topic, cls)
        self._names[cls] = topic

    def _claim(self, topic: str, cls: type) -> None:
        taken = self._classes.setdefault(topic, cls)
        if taken is not cls:
            msg = f"{topic!r} names both {taken.__qualname__} and {cls.__qualname__}"
            raise ValueError(msg)

    def topic_of(self, cls: type) -> str:
        """The name `cls` (an event class or an aggregate) is stored as now."""
        try:
            return self._names[cls]
        except KeyError:
            msg = f"{cls.__qualname__} is not an aggregate of the catalog or one of its events"
            raise LookupError(msg) from None

    def class_of(self, topic: str) -> type:
        """The class stored as `topic`, or the class an old name `topic` was renamed to."""
        found = self._classes.get(topic)
        if found is None:
            raise UnknownTopic(topic, _DOCUMENT if topic in self.documents else _UNDECLARED)
        return found

    def personal(self, topic: str) -> tuple[PersonalPath, ...]:
        """The paths of the personal values in an event stored as `topic` (none: no such data)."""
        return self._personal.get(topic, ())

    def readable(self) -> frozenset[str]:
        """Every name a stored event may carry: events' names now, their old names, documents."""
        return frozenset(self._events) | self.documents
