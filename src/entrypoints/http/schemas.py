"""Request and response bodies of the HTTP API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import msgspec

from application.queries.customers import CustomerView
from entrypoints.signal_schema import IdentityIn, ProfileIn

__all__ = [
    "ClockIn",
    "ClockOut",
    "CustomerUpsertIn",
    "CustomerUpsertOut",
    "IngestOut",
    "SignalResultOut",
    "TimelineItemOut",
    "TimelineOut",
]


class CustomerUpsertIn(msgspec.Struct, forbid_unknown_fields=True):
    """Finds the customer by any of its identities (creating it if none is known) and updates it."""

    identities: Annotated[list[IdentityIn], msgspec.Meta(min_length=1, max_length=20)]
    profile: ProfileIn | None = None
    attributes: dict[str, str | int | float | bool | None] = msgspec.field(default_factory=dict)


class CustomerUpsertOut(msgspec.Struct):
    created: bool
    merged: list[UUID]
    customer: CustomerView


class SignalResultOut(msgspec.Struct):
    index: int
    id: str
    status: Literal["recorded", "duplicate"]
    signal_id: UUID
    customer_id: UUID | None


class IngestOut(msgspec.Struct):
    recorded: int
    duplicates: int
    results: list[SignalResultOut]


class TimelineItemOut(msgspec.Struct):
    position: int
    type: str
    stream_id: UUID
    version: int
    recorded_at: datetime
    data: dict[str, Any]


class TimelineOut(msgspec.Struct):
    customer_id: UUID
    items: list[TimelineItemOut]
    next_cursor: str | None


class ClockIn(msgspec.Struct, forbid_unknown_fields=True):
    """Give `set` to jump to a time, or `advance_seconds` to move forward."""

    set: datetime | None = None
    advance_seconds: Annotated[float, msgspec.Meta(ge=0)] | None = None


class ClockOut(msgspec.Struct):
    now: datetime
