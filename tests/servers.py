"""Real PostgreSQL and NATS for tests: from DATABASE_URL/NATS_URL, else throwaway embedded servers."""

from __future__ import annotations

import os
import tempfile
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from adapters.embedded.nats import EmbeddedNats
from adapters.embedded.postgres import EmbeddedPostgres
from adapters.postgres.migrations import migrate

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["TestDatabases", "nats_server", "postgres_server"]


@contextmanager
def postgres_server() -> Iterator[str]:
    if os.environ.get("DATABASE_URL"):
        yield os.environ["DATABASE_URL"]
        return
    with tempfile.TemporaryDirectory(prefix="chorus-pg-") as tmp:
        server = EmbeddedPostgres(Path(tmp) / "data", fast_unsafe=True)
        try:
            yield server.start()
        finally:
            server.stop()


@contextmanager
def nats_server() -> Iterator[str]:
    if os.environ.get("NATS_URL"):
        yield os.environ["NATS_URL"]
        return
    with tempfile.TemporaryDirectory(prefix="chorus-nats-") as tmp:
        server = EmbeddedNats(Path(tmp) / "store")
        try:
            yield server.start()
        finally:
            server.stop()


def with_database(dsn: str, name: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path="/" + name))


class TestDatabases:
    """Makes a migrated template once, then a fresh database per test by copying it."""

    __test__ = False

    def __init__(self, server_dsn: str) -> None:
        self.server_dsn = server_dsn
        self.prefix = f"chorus_test_{uuid.uuid4().hex[:8]}"
        self.template = f"{self.prefix}_template"
        self.made: list[str] = []

    async def _admin(self) -> asyncpg.Connection:
        return await asyncpg.connect(with_database(self.server_dsn, "postgres"))

    async def prepare(self) -> None:
        conn = await self._admin()
        try:
            await conn.execute(f'CREATE DATABASE "{self.template}"')
        finally:
            await conn.close()
        await migrate(with_database(self.server_dsn, self.template))

    async def create(self) -> str:
        name = f"{self.prefix}_{len(self.made)}"
        conn = await self._admin()
        try:
            await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
        finally:
            await conn.close()
        self.made.append(name)
        return with_database(self.server_dsn, name)

    async def drop_all(self) -> None:
        conn = await self._admin()
        try:
            for name in [*self.made, self.template]:
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()
