"""API keys stored as SHA-256 hashes of high-entropy secrets."""

from __future__ import annotations

import hashlib
import secrets
from typing import TYPE_CHECKING

from ports.api_keys import ApiKey, NewApiKey, Role, check_agent_key

if TYPE_CHECKING:
    import asyncpg

    from ports.clock import Clock
    from ports.ids import IdGenerator

__all__ = ["PostgresApiKeyStore"]

_PREFIX = "chorus_"


def _hash(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


class PostgresApiKeyStore:
    """Looks keys up by hash; a cache keeps the hot path off the database."""

    def __init__(self, pool: asyncpg.Pool, clock: Clock, ids: IdGenerator) -> None:
        self.pool = pool
        self.clock = clock
        self.ids = ids
        self._known: dict[bytes, ApiKey] = {}

    async def create(
        self, role: Role, name: str, *, secret: str | None = None, agent: str | None = None
    ) -> NewApiKey:
        check_agent_key(role, agent)
        secret = secret or _PREFIX + secrets.token_urlsafe(32)
        key = ApiKey(self.ids.new_id(), name, role, self.clock.now(), agent)
        await self.pool.execute(
            """INSERT INTO api_keys (id, name, role, key_hash, created_at, agent)
               VALUES ($1, $2, $3, $4, $5, $6)
               ON CONFLICT (key_hash) DO UPDATE
               SET role = excluded.role, agent = excluded.agent, revoked_at = NULL""",
            key.id,
            key.name,
            key.role.value,
            _hash(secret),
            key.created_at,
            agent,
        )
        self._known.pop(_hash(secret), None)
        return NewApiKey(key, secret)

    async def authenticate(self, secret: str) -> ApiKey | None:
        digest = _hash(secret)
        known = self._known.get(digest)
        if known is not None:
            return known
        row = await self.pool.fetchrow(
            """SELECT id, name, role, created_at, agent FROM api_keys
               WHERE key_hash = $1 AND revoked_at IS NULL""",
            digest,
        )
        if row is None:
            return None
        key = ApiKey(row["id"], row["name"], Role(row["role"]), row["created_at"], row["agent"])
        if len(self._known) < 10_000:
            self._known[digest] = key
        return key
