"""API keys in memory, kept by the hash of their secret as PostgreSQL keeps them."""

from __future__ import annotations

import dataclasses
import hashlib
import secrets
from typing import TYPE_CHECKING

from ports.api_keys import ApiKey, KeyChange, NewApiKey, check_key_scope

if TYPE_CHECKING:
    from collections.abc import Iterable
    from datetime import datetime
    from uuid import UUID

    from ports.api_keys import Role
    from ports.clock import Clock
    from ports.ids import IdGenerator

__all__ = ["InMemoryApiKeyStore"]


def _hash(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def _new_secret() -> str:
    return "chorus_" + secrets.token_urlsafe(32)


class InMemoryApiKeyStore:
    """Creating a key with a secret that exists already gives that secret the new role."""

    def __init__(self, clock: Clock, ids: IdGenerator) -> None:
        self.clock = clock
        self.ids = ids
        self.keys: dict[bytes, ApiKey] = {}
        self.log: list[KeyChange] = []

    def _record(self, key: ApiKey, change: str, by: str, **detail: object) -> None:
        self.log.append(KeyChange(key.id, change, by, self.clock.now(), dict(detail)))

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
        secret = secret or _new_secret()
        earlier = self.keys.get(_hash(secret))
        key = ApiKey(
            self.ids.new_id() if earlier is None else earlier.id,
            name if earlier is None else earlier.name,
            role,
            self.clock.now() if earlier is None else earlier.created_at,
            agent,
            scoped,
            expires_at,
        )
        self.keys[_hash(secret)] = key
        self._record(
            key,
            "created" if earlier is None else "changed",
            by,
            role=role.value,
            teams=sorted(scoped),
        )
        return NewApiKey(key, secret)

    async def identify(self, secret: str) -> ApiKey | None:
        return self.keys.get(_hash(secret))

    async def authenticate(self, secret: str) -> ApiKey | None:
        key = await self.identify(secret)
        return key if key is not None and key.refusal(self.clock.now()) is None else None

    def _find(self, key_id: UUID) -> tuple[bytes, ApiKey] | None:
        return next(((h, k) for h, k in self.keys.items() if k.id == key_id), None)

    async def get(self, key_id: UUID) -> ApiKey | None:
        found = self._find(key_id)
        return None if found is None else found[1]

    async def all_keys(self) -> list[ApiKey]:
        return sorted(self.keys.values(), key=lambda k: (k.created_at, str(k.id)))

    async def rotate(self, key_id: UUID, *, by: str) -> NewApiKey | None:
        found = self._find(key_id)
        if found is None or found[1].revoked_at is not None:
            return None
        digest, key = found
        secret = _new_secret()
        del self.keys[digest]
        self.keys[_hash(secret)] = key
        self._record(key, "rotated", by)
        return NewApiKey(key, secret)

    async def revoke(self, key_id: UUID, *, by: str) -> ApiKey | None:
        found = self._find(key_id)
        if found is None:
            return None
        digest, key = found
        if key.revoked_at is None:
            key = dataclasses.replace(key, revoked_at=self.clock.now())
            self.keys[digest] = key
            self._record(key, "revoked", by)
        return key

    async def changes(self, key_id: UUID) -> list[KeyChange]:
        return [change for change in self.log if change.key_id == key_id]
