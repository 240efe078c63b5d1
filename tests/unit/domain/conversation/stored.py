"""Events through the event store's codec, and an aggregate rebuilt from them."""

from __future__ import annotations

from typing import Any

import msgspec

from adapters.postgres.codec import EventCodec


def stored_and_read_back(aggregate: Any) -> tuple[list[Any], list[Any]]:
    """The aggregate's pending events, and the same events encoded and decoded."""
    codec = EventCodec()
    events = list(aggregate.collect_events())
    read_back = [codec.decode(*msgspec.structs.astuple(codec.encode(e))) for e in events]
    return events, read_back


def rebuilt(events: list[Any]) -> Any:
    """The aggregate the events make."""
    aggregate = None
    for stored in events:
        aggregate = stored.mutate(aggregate)
    return aggregate
