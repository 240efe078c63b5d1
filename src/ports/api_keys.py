"""API keys and the roles they carry."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from datetime import datetime
    from uuid import UUID

__all__ = ["ApiKey", "ApiKeyStore", "NewApiKey", "Role"]


class Role(StrEnum):
    """What a key may do."""

    ADMIN = "admin"
    MARKETER = "marketer"
    AGENT = "agent"
    AUDITOR = "auditor"
    SERVICE = "service"


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A key as stored: never the secret itself."""

    id: UUID
    name: str
    role: Role
    created_at: datetime


@dataclass(frozen=True, slots=True)
class NewApiKey:
    """A key just created; `secret` is shown this once."""

    key: ApiKey
    secret: str


class ApiKeyStore(Protocol):
    """Creates keys and tells which key a secret is."""

    async def create(self, role: Role, name: str, *, secret: str | None = None) -> NewApiKey: ...

    async def authenticate(self, secret: str) -> ApiKey | None: ...
