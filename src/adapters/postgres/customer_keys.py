"""Customers' data keys in `customer_keys`, unwrapped once and kept in memory for a while.

Reading and writing events is synchronous where it decodes and encodes; the keys it needs are
loaded just before, from the rows it fetched or the subjects it appends (`load`, `ensure`).
A key read while its row was written by the caller's own open transaction is used for that
call only and never kept, since the transaction may still roll back. Kept keys live `ttl`
seconds, so an erasure in another process takes effect here within that time: then they are
checked again, and only whether they were erased comes back (a key row never changes
otherwise); an erased key is erased for good and is kept as such.
"""

from __future__ import annotations

import asyncio
import operator
import time
from collections import OrderedDict
from typing import TYPE_CHECKING
from uuid import UUID, uuid4

import asyncpg

from adapters.crypto.envelope import DEV_MASTER_KEY, MasterKey

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Iterable
    from datetime import datetime

    from adapters.crypto.envelope import DataKey
    from domain.customer.identities import Identity

__all__ = [
    "CUSTOMER_KEYS",
    "SEALED_DOCUMENT_PREFIX",
    "SEALED_PREFIX",
    "CustomerKeys",
    "KeyNotLoaded",
    "parsed_id",
    "sealed_by",
    "stored_key_id",
]

SEALED_PREFIX = b'{"$k":"'
"""How the payload of an event holding sealed values starts: the id of the customer whose key
sealed them comes next."""
_ID_END = len(SEALED_PREFIX) + 36
SEALED_DOCUMENT_PREFIX = b"\x00D"
"""How the payload of a document sealed whole as bytes starts (never JSON): the 16 bytes of
the id of the key that sealed it come next (`EventCodec.sealed_documents`)."""
_DOCUMENT_ID_END = len(SEALED_DOCUMENT_PREFIX) + 16

# A key row is written once and changes only when it is erased (`wrapped` NULL): a key kept
# and gone stale is checked for that alone, and its row comes back only if it was erased.
_LOAD = """
SELECT customer_id, wrapped, coalesce(xmin = pg_current_xact_id_if_assigned()::xid, false)
FROM customer_keys WHERE customer_id = ANY($1::uuid[])
UNION ALL
SELECT customer_id, wrapped, coalesce(xmin = pg_current_xact_id_if_assigned()::xid, false)
FROM customer_keys WHERE customer_id = ANY($2::uuid[]) AND wrapped IS NULL
"""
_CREATE = """
INSERT INTO customer_keys (customer_id, wrapped)
SELECT * FROM unnest($1::uuid[], $2::bytea[]) ORDER BY 1
ON CONFLICT (customer_id) DO NOTHING
RETURNING customer_id
"""
_ERASE = """
INSERT INTO customer_keys (customer_id, wrapped, erased_at)
SELECT id, NULL, $2 FROM unnest($1::uuid[]) AS ids(id) ORDER BY 1
ON CONFLICT (customer_id) DO UPDATE
SET wrapped = NULL, erased_at = coalesce(customer_keys.erased_at, EXCLUDED.erased_at)
"""


_IDENTITY_KEYS = "SELECT digest, key_id FROM identity_keys WHERE digest = ANY($1::bytea[])"
_CREATE_IDENTITY_KEYS = """
WITH made AS (
    INSERT INTO identity_keys (digest, key_id)
    SELECT * FROM unnest($1::bytea[], $2::uuid[]) ORDER BY 1
    ON CONFLICT (digest) DO NOTHING
    RETURNING key_id
)
INSERT INTO customer_keys (customer_id, wrapped)
SELECT key_id, wrapped FROM unnest($2::uuid[], $3::bytea[]) AS u(key_id, wrapped)
WHERE key_id IN (SELECT key_id FROM made)
RETURNING customer_id
"""
_ERASE_IDENTITY_KEYS = """
WITH gone AS (DELETE FROM identity_keys WHERE digest = ANY($1::bytea[]) RETURNING key_id)
INSERT INTO customer_keys (customer_id, wrapped, erased_at)
SELECT key_id, NULL, $2 FROM gone ORDER BY 1
ON CONFLICT (customer_id) DO UPDATE
SET wrapped = NULL, erased_at = coalesce(customer_keys.erased_at, EXCLUDED.erased_at)
RETURNING customer_id
"""


class KeyNotLoaded(LookupError):
    """A customer's key was needed before it was loaded: a reader forgot to `load` it."""


_IDS: dict[bytes, UUID] = {}
_IDS_KEPT = 200_000


def parsed_id(stored: bytes) -> UUID:
    """The key id a payload stores, as its 36 characters of text or its 16 bytes: parsed once
    and kept, since the same customers' ids come back page after page, and parsing a `UUID`
    costs more than opening what it sealed."""
    found = _IDS.get(stored)
    if found is None:
        if len(_IDS) >= _IDS_KEPT:
            _IDS.clear()
        found = UUID(bytes=stored) if len(stored) == 16 else UUID(stored.decode("ascii"))
        _IDS[stored] = found
    return found


def stored_key_id(payload: bytes) -> bytes | None:
    """The id of the key that sealed the payload's personal values as the payload stores it
    (36 characters of text or 16 bytes, which never compare equal), if it holds any."""
    if payload[:7] == SEALED_PREFIX:
        return payload[7:_ID_END]
    if payload[:2] == SEALED_DOCUMENT_PREFIX:
        return payload[2:_DOCUMENT_ID_END]
    return None


def sealed_by(payload: bytes) -> UUID | None:
    """The customer whose key sealed the payload's personal values, if it holds any."""
    stored = stored_key_id(payload)
    return None if stored is None else parsed_id(stored)


def _in_transaction(conn: asyncpg.Connection | asyncpg.Pool) -> bool:
    """Whether `conn` is a connection inside a transaction (a pool never is)."""
    in_transaction = getattr(conn, "is_in_transaction", None)
    return in_transaction is not None and bool(in_transaction())


_Entry = tuple["DataKey | None", float]
_AS_INT = operator.attrgetter("int")


_ERASING_FOR = 60.0
"""Seconds an erasure's keys are read again at every use in the process that erases them, rather
than kept: longer than any erasing transaction takes to commit."""


class CustomerKeys:
    """Data keys by customer: `None` once erased (or never made)."""

    def __init__(
        self,
        master: MasterKey | None = None,
        ttl: float = 2.0,
        capacity: int = 200_000,
        now: Callable[[], float] = time.monotonic,
        opened_capacity: int = 32 << 20,
    ) -> None:
        self.master = master or MasterKey(DEV_MASTER_KEY)
        self.ttl = ttl
        self.capacity = capacity
        self._now = now
        self._kept: OrderedDict[UUID, _Entry] = OrderedDict()
        self._tentative: dict[UUID, DataKey | None] = {}
        # The loads outside any transaction under way, by the customers they read: the lanes
        # of the projection worker, woken by one commit, read the same new customers' events
        # at once, and a load asked for a customer another is reading waits for that one.
        self._loading: dict[UUID, asyncio.Future[None]] = {}
        # Which key seals what is received about an identity: it changes only when the
        # identity's customer is erased, which the key itself says (`for_identities`).
        self._by_identity: dict[Identity, UUID] = {}
        # What keys opened lately: the plain payload of a sealed one, with the key that opened
        # it. The lanes of the projection worker read the same events one after the other (a
        # recorded signal: the signal activity, the journeys, the threads), and opening one
        # costs several times finding it here. Used only with the very key object that opened
        # it, so it reads as opening again would; forgotten with the keys, and whole when a
        # load finds a key erased (an erasure elsewhere), so that no plain value outlives its
        # key here. Bounded by bytes, not entries: a queued message's payload holds its body.
        self._opened: dict[bytes, tuple[DataKey, bytes]] = {}
        self._opened_size = 0  # bytes of the payloads kept and of what they opened to
        self.opened_capacity = opened_capacity
        # Customers this process is erasing, until when: `erase` forgets their keys in the
        # erasing transaction, and a read before it commits still finds the key it deletes.
        # Such a read uses what it found, and keeps none of it (see `load`).
        self._erasing: dict[UUID, float] = {}

    def use(self, master: MasterKey) -> None:
        """Keys are wrapped by `master` from now on (a process sets it once, at start)."""
        self.master = master
        self.forget()

    def forget(self, customer_ids: Iterable[UUID] | None = None) -> None:
        self._forget_opened()
        if customer_ids is None:
            self._kept.clear()
            self._tentative.clear()
            self._loading.clear()
            self._by_identity.clear()
            return
        for customer_id in customer_ids:
            self._kept.pop(customer_id, None)
            self._tentative.pop(customer_id, None)

    def key_of(self, customer_id: UUID) -> DataKey | None:
        """The customer's key, loaded before; None once erased."""
        kept = self._kept.get(customer_id)
        if kept is not None:
            return kept[0]
        try:
            return self._tentative[customer_id]
        except KeyError:
            raise KeyNotLoaded(f"the key of customer {customer_id} was not loaded") from None

    def opened_before(self, payload: bytes, key: DataKey) -> bytes | None:
        """The plain payload `key` opened this sealed one to lately, if it did."""
        found = self._opened.get(payload)
        return found[1] if found is not None and found[0] is key else None

    def keep_opened(self, payload: bytes, key: DataKey, plain: bytes) -> None:
        """Keeps what `key` opened the sealed `payload` to, for `opened_before`; all of it is
        dropped once it holds `opened_capacity` bytes (the lanes read within seconds of each
        other: no LRU needed)."""
        size = len(payload) + len(plain)
        if self._opened_size + size > self.opened_capacity:
            self._forget_opened()
        self._opened[payload] = (key, plain)
        self._opened_size += size

    def _forget_opened(self) -> None:
        self._opened.clear()
        self._opened_size = 0

    def _fresh(self, customer_id: UUID, now: float) -> bool:
        kept = self._kept.get(customer_id)
        return kept is not None and (kept[0] is None or now - kept[1] < self.ttl)

    async def load_for(
        self, conn: asyncpg.Connection | asyncpg.Pool, payloads: Iterable[bytes | None]
    ) -> dict[bytes, DataKey | None]:
        """Loads the keys that sealed these payloads (those holding personal values); returns
        them by their ids as the payloads store them (`stored_key_id`), None for erased ones,
        so that a reader finds a page's keys by one lookup an event, now or when it opens it.
        Every reader of the log calls this a page: a key kept and fresh is taken as it is
        checked, with no second lookup."""
        found: dict[bytes, DataKey | None] = {}
        stale: dict[bytes, UUID] = {}
        now, held, ttl = self._now(), self._kept, self.ttl
        for stored in {stored_key_id(p) for p in payloads if p is not None}:
            if stored is None:
                continue
            customer_id = parsed_id(stored)
            kept = held.get(customer_id)
            if kept is not None and (kept[0] is None or now - kept[1] < ttl):
                found[stored] = kept[0]
            else:
                stale[stored] = customer_id
        if stale:
            await self.load(conn, stale.values())
            key_of = self.key_of
            for stored, customer_id in stale.items():
                found[stored] = key_of(customer_id)
        return found

    def loaded_for(self, payloads: Iterable[bytes | None]) -> dict[bytes, DataKey | None]:
        """As `load_for`, of keys loaded before."""
        stored = {stored_key_id(p) for p in payloads if p is not None}
        key_of = self.key_of
        return {found: key_of(parsed_id(found)) for found in stored if found is not None}

    async def load(
        self,
        conn: asyncpg.Connection | asyncpg.Pool,
        customer_ids: Collection[UUID],
        *,
        waited: bool = False,
    ) -> set[UUID]:
        """Loads these customers' keys; returns the customers who have no key row at all.

        A key another load outside a transaction is reading is waited for, once, rather than
        read again: what that load keeps is fresh, and what it does not (a key it found
        missing) is read here. No load waits for one inside a transaction, which may see a key
        row its own transaction made and no other sees."""
        now = self._now()
        held, ttl = self._kept, self.ttl  # `_fresh`, inline: a page asks for each of its keys
        missing: list[UUID] = []
        stale: list[UUID] = []  # kept, and only to be checked for an erasure
        for c in customer_ids:
            k = held.get(c)
            if k is None:
                missing.append(c)
            elif k[0] is not None and now - k[1] >= ttl:
                stale.append(c)
        if not missing and not stale:
            return set()
        loading = self._loading
        if not waited and loading:
            running = asyncio.get_running_loop()
            others = {
                f
                for c in (*missing, *stale)
                if (f := loading.get(c)) is not None and f.get_loop() is running
            }
            if others:
                await asyncio.wait(others)
                return await self.load(conn, customer_ids, waited=True)
        if _in_transaction(conn):
            rows = await conn.fetch(_LOAD, missing, stale)
            return self._loaded(rows, missing, stale, now)
        done = asyncio.get_running_loop().create_future()
        reading = [*missing, *stale]
        for customer_id in reading:
            loading.setdefault(customer_id, done)
        try:
            rows = await conn.fetch(_LOAD, missing, stale)
            return self._loaded(rows, missing, stale, now)
        finally:
            for customer_id in reading:
                if loading.get(customer_id) is done:
                    del loading[customer_id]
            done.set_result(None)

    def _loaded(
        self,
        rows: list[asyncpg.Record],
        missing: list[UUID],
        stale: list[UUID],
        now: float,
    ) -> set[UUID]:
        """Keeps the keys a load read; the customers who have no key row at all."""
        held = self._kept
        if len(self._tentative) > self.capacity:
            self._tentative.clear()  # each call loads what it uses again, before using it
        found: set[UUID] = set()
        for customer_id, wrapped, mine in rows:
            found.add(customer_id)
            kept = self._kept.get(customer_id)
            known = kept[0] if kept is not None else self._tentative.get(customer_id)
            if known is not None and known.wrapped == wrapped:
                # Read again, unchanged (or made here, and committed since): not unwrapped again.
                key: DataKey | None = known
            else:
                key = None if wrapped is None else self.master.unwrap(customer_id, wrapped)
                if key is None and kept is not None and kept[0] is not None:
                    self._forget_opened()  # erased since it was kept: what it opened goes
            if mine or self._erasing.get(customer_id, 0.0) > now:
                self._tentative[customer_id] = key
                continue
            self._tentative.pop(customer_id, None)
            self._kept[customer_id] = (key, now)
            self._kept.move_to_end(customer_id)
        absent = {c for c in missing if c not in found}
        for customer_id in absent:
            self._tentative[customer_id] = None  # no key: what it sealed cannot open
        for customer_id in stale:
            kept = held.get(customer_id)  # not erased: kept again, unless forgotten meanwhile
            if customer_id not in found and kept is not None and kept[0] is not None:
                held[customer_id] = (kept[0], now)
                held.move_to_end(customer_id)
        while len(self._kept) > self.capacity:
            self._kept.popitem(last=False)
        return absent

    async def ensure(self, conn: asyncpg.Connection, customer_ids: Collection[UUID]) -> None:
        """Loads these customers' keys, making the ones they have not got yet. An erased
        customer gets none: what is recorded about them afterwards is stored erased."""
        absent = await self.load(conn, customer_ids)
        if not absent:
            return
        ordered = sorted(absent, key=_AS_INT)  # the order of UUIDs, compared in C
        made = dict(zip(ordered, self.master.new_keys(ordered), strict=True))
        rows = await conn.fetch(_CREATE, ordered, [made[c][0] for c in ordered])
        stored = {row[0] for row in rows}
        self._made(conn, {c: made[c][1] for c in stored})
        taken = [c for c in ordered if c not in stored]
        if taken:  # made by another writer first (or erased meanwhile): theirs is the one
            for customer_id in taken:
                self._tentative.pop(customer_id, None)
            await self.load(conn, taken)

    def _made(self, conn: asyncpg.Connection | asyncpg.Pool, made: dict[UUID, DataKey]) -> None:
        """Keys this process made and stored: kept when stored for good (no transaction to
        roll back), else used for the caller's transaction only."""
        committed = not (isinstance(conn, asyncpg.Connection) and conn.is_in_transaction())
        now = self._now()
        for customer_id, key in made.items():
            self._tentative.pop(customer_id, None)
            if committed:
                self._kept[customer_id] = (key, now)
            else:
                self._tentative[customer_id] = key

    async def for_identities(
        self, pool: asyncpg.Pool, identities: Collection[Identity]
    ) -> dict[Identity, UUID]:
        """The ids of the keys that seal what is received about these identities (made for
        the ones that have none, committed at once), their data keys loaded."""
        found = await self._for_identities(pool, identities)
        erased = [identity for identity, key_id in found.items() if self.key_of(key_id) is None]
        if erased:  # kept from before an erasure: their signals now go under new keys
            for identity in erased:
                self._by_identity.pop(identity, None)
            found.update(await self._for_identities(pool, erased))
        return found

    async def _for_identities(
        self, pool: asyncpg.Pool, identities: Collection[Identity]
    ) -> dict[Identity, UUID]:
        found: dict[Identity, UUID] = {}
        unknown: list[Identity] = []
        by_identity = self._by_identity
        for identity in identities:  # the same identities come back batch after batch
            kept = by_identity.get(identity)
            if kept is not None:
                found[identity] = kept
            else:
                unknown.append(identity)
        missing = {self.master.digest(str(i)): i for i in unknown}
        if missing:
            await self._identity_keys_of(pool, missing, found)
            absent = [digest for digest, identity in missing.items() if identity not in found]
            if absent:
                ids = [uuid4() for _ in absent]
                made = self.master.new_keys(ids)
                rows = await pool.fetch(_CREATE_IDENTITY_KEYS, absent, ids, [m[0] for m in made])
                stored = {row[0] for row in rows}
                self._made(pool, {k: m[1] for k, m in zip(ids, made, strict=True) if k in stored})
                for digest, key_id in zip(absent, ids, strict=True):
                    if key_id in stored:
                        found[missing[digest]] = key_id
                        self._by_identity[missing[digest]] = key_id
                if len(stored) < len(absent):  # another writer made some first
                    await self._identity_keys_of(pool, missing, found)
        await self.load(pool, set(found.values()))
        return found

    async def _identity_keys_of(
        self,
        pool: asyncpg.Pool,
        missing: dict[bytes, Identity],
        found: dict[Identity, UUID],
    ) -> None:
        for digest, key_id in await pool.fetch(_IDENTITY_KEYS, list(missing)):
            found[missing[digest]] = key_id
            self._by_identity[missing[digest]] = key_id
        if len(self._by_identity) > self.capacity:
            self._by_identity.clear()  # they are read again, a batch at a time

    async def erase(
        self,
        conn: asyncpg.Connection,
        customer_ids: Collection[UUID],
        identities: Collection[Identity],
        at: datetime,
    ) -> None:
        """Deletes these customers' keys, and the keys of what was received about their
        identities, in the caller's transaction."""
        await conn.execute(_ERASE, sorted(customer_ids), at)
        digests = [self.master.digest(str(identity)) for identity in identities]
        erased = [row[0] for row in await conn.fetch(_ERASE_IDENTITY_KEYS, digests, at)]
        now = self._now()
        if len(self._erasing) > self.capacity:
            self._erasing = {c: t for c, t in self._erasing.items() if t > now}
        self._erasing.update(dict.fromkeys([*customer_ids, *erased], now + _ERASING_FOR))
        self.forget([*customer_ids, *erased])
        for identity in identities:
            self._by_identity.pop(identity, None)


CUSTOMER_KEYS = CustomerKeys()
"""This process's keys; the service gives it the master key from its settings at start."""
