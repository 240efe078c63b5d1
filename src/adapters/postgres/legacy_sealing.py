"""Sealing the events stored in clear before sealing existed (`chorus erasure seal-existing`).

An event recorded before migration 0038 holds its personal values in clear, so erasing its
customer cannot shred them. Each such row gets the payload the codec writes today: the same
values, sealed under its customer's key (made if they have none, as registration makes it),
and nothing else of the row changes; migration 0052 lets the events table take that one
rewrite and no other (ADR 0019). Batch by batch, each in one transaction, in log order; a
row already sealed is never a candidate again, so a run stopped halfway resumes by running
again, and a run with nothing left changes nothing.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import msgspec

from adapters.postgres.codec import EventCodec, sealed_fields
from adapters.postgres.customer_keys import SEALED_DOCUMENT_PREFIX, SEALED_PREFIX
from domain.shared.errors import InvalidValue
from domain.shared.personal import ERASED, map_personal
from domain.signals.aggregate import signal_id_for

if TYPE_CHECKING:
    from uuid import UUID

    import asyncpg

    from domain.customer.identities import Identity, IdentityNormalizer

__all__ = ["LegacySealing", "SealedBatch", "SealingCursor", "SealingMismatch"]

# The markers of a sealed payload (`customer_keys`); PostgreSQL finds what holds neither.
_CANDIDATES = """
FROM events
WHERE topic = ANY($1::text[])
  AND substring(payload FROM 1 FOR 7) <> $2::bytea
  AND substring(payload FROM 1 FOR 2) <> $3::bytea
  AND (subject_id IS NOT NULL OR topic = ANY($4::text[]))
"""
_COUNT = "SELECT count(*)" + _CANDIDATES
# In the global log's order, on its index: a cursor past the rows already looked at.
_BATCH = (
    "SELECT transaction_id::text, position, stream_id, version, topic, subject_id, payload"
    + _CANDIDATES
    + " AND (transaction_id, position) > ($5::text::xid8, $6::bigint)"
    " ORDER BY events.transaction_id, events.position LIMIT $7"  # the index's, not the text's
)
_ATTRIBUTED = """
SELECT s.signal_id, recorded.subject_id
FROM unnest($1::uuid[]) AS s(signal_id)
JOIN events recorded ON recorded.stream_id = s.signal_id AND recorded.version = 1
"""
_REWRITE = """
UPDATE events e SET payload = u.sealed
FROM unnest($1::uuid[], $2::int[], $3::bytea[], $4::bytea[]) AS u(stream_id, version, clear, sealed)
WHERE e.stream_id = u.stream_id AND e.version = u.version AND e.payload = u.clear
RETURNING e.stream_id, e.version
"""
# What migration 0052 asks of the transaction that rewrites a payload.
_SAYS_SEALING = "SELECT set_config('chorus.sealing_existing', 'on', true)"


class SealingMismatch(RuntimeError):
    """A payload sealed here would not read back as the values it held: nothing is written."""


@dataclass(frozen=True, slots=True)
class SealingCursor:
    """Where a run is in the log: after this (transaction, position)."""

    transaction_id: str = "0"
    position: int = 0


@dataclass(frozen=True, slots=True)
class SealedBatch:
    """What one batch did: rows looked at, sealed (their customer's key alive), written
    erased (their customer was erased since), and left in clear (a received signal that no
    customer and no identity can be found for)."""

    examined: int
    sealed: int
    erased: int
    left_clear: int
    next: SealingCursor

    @property
    def at_end(self) -> bool:
        return self.examined == 0


@dataclass(slots=True)
class _Row:
    stream_id: UUID
    version: int
    topic: str
    clear: bytes
    key_id: UUID | None  # whose key seals it; None: no one's (left in clear)
    sealed: bytes = b""
    erased: bool = False


class LegacySealing:
    """Finds the events whose personal values are still in clear and seals them in place."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        normalizer: IdentityNormalizer,
        codec: EventCodec | None = None,
    ) -> None:
        self.pool = pool
        self.normalizer = normalizer
        self.codec = codec or EventCodec()
        topics = self.codec.topics
        personal = sorted(t for t in topics.readable() if topics.personal(t))
        self._topics = personal
        self._documents = sorted(t for t in personal if t in topics.documents)
        self._encode = msgspec.json.Encoder().encode

    def _arguments(self) -> tuple[Any, ...]:
        return (self._topics, SEALED_PREFIX, SEALED_DOCUMENT_PREFIX, self._documents)

    async def remaining(self) -> int:
        """How many events still hold personal values in clear (those a run would look at)."""
        count: int = await self.pool.fetchval(_COUNT, *self._arguments())
        return count

    async def seal_batch(self, after: SealingCursor, size: int = 500) -> SealedBatch:
        """Seals the next `size` candidates after `after`, in one transaction."""
        key_ids: set[UUID] = set()
        try:
            async with self.pool.acquire() as proxy, proxy.transaction():
                conn = cast("asyncpg.Connection", proxy)
                found = await conn.fetch(
                    _BATCH, *self._arguments(), after.transaction_id, after.position, size
                )
                if not found:
                    return SealedBatch(0, 0, 0, 0, after)
                rows = await self._rows(conn, found)
                kept = [row for row in rows if row.key_id is not None]
                key_ids = {row.key_id for row in kept if row.key_id is not None}
                await self.codec.keys.ensure(conn, key_ids)
                for row in kept:
                    self._seal(row)
                written: set[tuple[UUID, int]] = set()
                if kept:
                    await conn.fetchval(_SAYS_SEALING)
                    changed = await conn.fetch(
                        _REWRITE,
                        [row.stream_id for row in kept],
                        [row.version for row in kept],
                        [row.clear for row in kept],
                        [row.sealed for row in kept],
                    )
                    written = {(r["stream_id"], r["version"]) for r in changed}
        except BaseException:
            # A key made in a transaction that rolled back was never stored.
            self.codec.keys.forget(key_ids)
            raise
        # A row another run sealed meanwhile is not written again, nor counted.
        done = [row for row in kept if (row.stream_id, row.version) in written]
        erased = sum(row.erased for row in done)
        last = found[-1]
        return SealedBatch(
            examined=len(found),
            sealed=len(done) - erased,
            erased=erased,
            left_clear=len(rows) - len(kept),
            next=SealingCursor(last["transaction_id"], last["position"]),
        )

    async def _rows(self, conn: asyncpg.Connection, found: list[asyncpg.Record]) -> list[_Row]:
        """Each candidate with the key that seals it: an event's, its subject's; a received
        signal's, the customer it was recorded on, or else its first identity's, as intake
        seals one now."""
        key_ids: dict[int, UUID | None] = {r["position"]: r["subject_id"] for r in found}
        received = {
            r["position"]: document_id
            for r in found
            if r["subject_id"] is None and (document_id := _document_id(r["payload"]))
        }
        by_signal = {signal_id_for(document_id): p for p, document_id in received.items()}
        for signal_id, customer_id in await conn.fetch(_ATTRIBUTED, list(by_signal)):
            key_ids[by_signal[signal_id]] = customer_id
        owners = {
            r["position"]: owner
            for r in found
            if key_ids[r["position"]] is None and (owner := self._owner(r["payload"]))
        }
        if owners:
            of_identity = await self.codec.keys.for_identities(self.pool, set(owners.values()))
            key_ids.update({p: of_identity[owner] for p, owner in owners.items()})
        return [
            _Row(r["stream_id"], r["version"], r["topic"], r["payload"], key_ids[r["position"]])
            for r in found
        ]

    def _owner(self, payload: bytes) -> Identity | None:
        """A received signal's first identity, normalised as intake normalises it."""
        try:
            identity = msgspec.json.decode(payload)["identities"][0]
            return self.normalizer.normalize(identity["type"], identity["value"])
        except (msgspec.DecodeError, KeyError, IndexError, TypeError, InvalidValue):
            return None

    def _seal(self, row: _Row) -> None:
        """The row's payload sealed under its key, checked to read back as it held."""
        assert row.key_id is not None
        key = self.codec.keys.key_of(row.key_id)
        row.erased = key is None
        if row.topic in self._documents:
            document_id = _document_id(row.clear)
            clear = {} if document_id is None else {"id": document_id}
            row.sealed = self.codec.sealed_document(row.topic, row.clear, row.key_id, clear)
            if key is not None and self.codec.as_recorded(row.topic, row.sealed) != (
                None,
                row.clear,
            ):
                raise SealingMismatch(f"event {row.stream_id}/{row.version} would not read back")
            return
        fields: dict[str, Any] = msgspec.json.decode(row.clear)
        paths = self.codec.topics.personal(row.topic)
        expected = map_personal(copy.deepcopy(fields), paths, _erased) if key is None else fields
        row.sealed = self._encode(sealed_fields(copy.deepcopy(fields), paths, key, row.key_id))
        if self.codec.opened(row.topic, row.sealed) != expected:
            raise SealingMismatch(f"event {row.stream_id}/{row.version} would not read back")


def _erased(_: Any) -> str:
    return ERASED


def _document_id(payload: bytes) -> str | None:
    """A received signal's producer id (kept in clear beside what is sealed)."""
    try:
        found = msgspec.json.decode(payload).get("id")
    except (msgspec.DecodeError, AttributeError):
        return None
    return found if isinstance(found, str) else None
