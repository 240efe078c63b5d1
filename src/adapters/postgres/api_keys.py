"""API keys stored as SHA-256 hashes of high-entropy secrets, with an append-only change log.

Each change is also a document in the event log (`ApiKey.Created`, `.Changed`, `.Rotated`,
`.Revoked`, on the key's stream), in the same transaction, so auditors read it with the rest.

A cache keeps the hot path off the database, but only for `CACHE_SECONDS`: a key revoked,
rotated or expired through any process is refused by every process within that time
(docs/adr/0014-api-keys-as-a-table-with-a-change-log.md).
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from typing import TYPE_CHECKING, Any

from domain.access.records import KEY_CHANGE_TOPICS
from ports.api_keys import ApiKey, KeyChange, NewApiKey, Role, check_key_scope

if TYPE_CHECKING:
    from collections.abc import Iterable
    from datetime import datetime
    from uuid import UUID

    import asyncpg
    from asyncpg.pool import PoolConnectionProxy

    from ports.clock import Clock
    from ports.ids import IdGenerator

__all__ = ["CACHE_SECONDS", "PostgresApiKeyStore"]

_PREFIX = "chorus_"
CACHE_SECONDS = 1.0
"""How long a process trusts what it read about a key: revocation reaches it within this."""
_CACHE_SIZE = 10_000
_COLUMNS = "id, name, role, created_at, agent, teams, expires_at, revoked_at"
# The key's row is locked by the change written just before, so changes to one key take their
# places in its stream one after the other.
_APPEND_CHANGE = """
INSERT INTO events (stream_id, version, topic, occurred_at, payload)
SELECT $1, coalesce(max(version), 0) + 1, $2, $3, $4 FROM events WHERE stream_id = $1
"""


def _hash(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def _key(row: asyncpg.Record) -> ApiKey:
    return ApiKey(
        row["id"],
        row["name"],
        Role(row["role"]),
        row["created_at"],
        row["agent"],
        frozenset(row["teams"]),
        row["expires_at"],
        row["revoked_at"],
    )


class PostgresApiKeyStore:
    """Looks keys up by hash; every change is written with its change-log entry."""

    def __init__(self, pool: asyncpg.Pool, clock: Clock, ids: IdGenerator) -> None:
        self.pool = pool
        self.clock = clock
        self.ids = ids
        # monotonic time, not the Clock port: the cache's age is the process's own business.
        self._known: dict[bytes, tuple[float, ApiKey]] = {}

    async def _record(
        self,
        conn: PoolConnectionProxy[asyncpg.Record],
        key_id: UUID,
        change: str,
        by: str,
        **detail: Any,
    ) -> None:
        at = self.clock.now()
        await conn.execute(
            """INSERT INTO api_key_changes (key_id, change, by_key, at, detail)
               VALUES ($1, $2, $3, $4, $5::jsonb)""",
            key_id,
            change,
            by,
            at,
            json.dumps(detail),
        )
        document = {"key_id": str(key_id), "by": by, **detail}
        await conn.execute(
            _APPEND_CHANGE, key_id, KEY_CHANGE_TOPICS[change], at, json.dumps(document).encode()
        )

    async def create(
        self,
        role: Role,
        name: str,
        *,
        secret: str | None = None,
        agent: str | None = None,
        teams: Iterable[str] = (),
        expires_at: datetime | None = None,
        by: str = "cli",
    ) -> NewApiKey:
        scoped = check_key_scope(role, agent, teams)
        secret = secret or _PREFIX + secrets.token_urlsafe(32)
        async with self.pool.acquire() as conn, conn.transaction():
            # A given secret (the demo's admin key) keeps its id and takes the new scope.
            row = await conn.fetchrow(
                f"""INSERT INTO api_keys
                        (id, name, role, key_hash, created_at, agent, teams, expires_at)
                    VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                    ON CONFLICT (key_hash) DO UPDATE
                    SET role = excluded.role, agent = excluded.agent, teams = excluded.teams,
                        expires_at = excluded.expires_at, revoked_at = NULL
                    RETURNING {_COLUMNS}, xmax <> 0 AS existed""",
                self.ids.new_id(),
                name,
                role.value,
                _hash(secret),
                self.clock.now(),
                agent,
                sorted(scoped),
                expires_at,
            )
            assert row is not None  # INSERT ... RETURNING answers one row
            key = _key(row)
            await self._record(
                conn,
                key.id,
                "changed" if row["existed"] else "created",
                by,
                name=name,
                role=role.value,
                agent=agent,
                teams=sorted(scoped),
                expires_at=None if expires_at is None else expires_at.isoformat(),
            )
        self._known.pop(_hash(secret), None)
        return NewApiKey(key, secret)

    async def identify(self, secret: str) -> ApiKey | None:
        digest = _hash(secret)
        known = self._known.get(digest)
        now = time.monotonic()
        if known is not None and now - known[0] < CACHE_SECONDS:
            return known[1]
        row = await self.pool.fetchrow(
            f"SELECT {_COLUMNS} FROM api_keys WHERE key_hash = $1", digest
        )
        if row is None:
            self._known.pop(digest, None)
            return None
        key = _key(row)
        if len(self._known) >= _CACHE_SIZE:
            self._known = {h: e for h, e in self._known.items() if now - e[0] < CACHE_SECONDS}
        if len(self._known) < _CACHE_SIZE:
            self._known[digest] = (now, key)
        return key

    async def authenticate(self, secret: str) -> ApiKey | None:
        key = await self.identify(secret)
        return key if key is not None and key.refusal(self.clock.now()) is None else None

    async def get(self, key_id: UUID) -> ApiKey | None:
        row = await self.pool.fetchrow(f"SELECT {_COLUMNS} FROM api_keys WHERE id = $1", key_id)
        return None if row is None else _key(row)

    async def all_keys(self) -> list[ApiKey]:
        rows = await self.pool.fetch(f"SELECT {_COLUMNS} FROM api_keys ORDER BY created_at, id")
        return [_key(row) for row in rows]

    def _forget(self, key_id: UUID) -> None:
        """This process refuses the old state at once; the others within `CACHE_SECONDS`."""
        self._known = {h: e for h, e in self._known.items() if e[1].id != key_id}

    async def rotate(self, key_id: UUID, *, by: str) -> NewApiKey | None:
        secret = _PREFIX + secrets.token_urlsafe(32)
        async with self.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                f"""UPDATE api_keys SET key_hash = $2
                    WHERE id = $1 AND revoked_at IS NULL RETURNING {_COLUMNS}""",
                key_id,
                _hash(secret),
            )
            if row is None:
                return None
            await self._record(conn, key_id, "rotated", by)
        self._forget(key_id)
        return NewApiKey(_key(row), secret)

    async def revoke(self, key_id: UUID, *, by: str) -> ApiKey | None:
        async with self.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                f"""UPDATE api_keys SET revoked_at = $2
                    WHERE id = $1 AND revoked_at IS NULL RETURNING {_COLUMNS}""",
                key_id,
                self.clock.now(),
            )
            if row is None:
                return await self.get(key_id)
            await self._record(conn, key_id, "revoked", by)
        self._forget(key_id)
        return _key(row)

    async def changes(self, key_id: UUID) -> list[KeyChange]:
        rows = await self.pool.fetch(
            """SELECT key_id, change, by_key, at, detail FROM api_key_changes
               WHERE key_id = $1 ORDER BY seq""",
            key_id,
        )
        return [
            KeyChange(r["key_id"], r["change"], r["by_key"], r["at"], json.loads(r["detail"]))
            for r in rows
        ]
