"""Real PostgreSQL and NATS for tests: from DATABASE_URL/NATS_URL, else throwaway embedded servers."""

from __future__ import annotations

import os
import shutil
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

__all__ = ["TestDatabases", "nats_server", "postgres_server", "scratch_dir"]

# Memory a throwaway server may take for its files: a run's databases are dropped as their
# tests end, so it holds little more than the template and the databases of running tests.
_SCRATCH_ROOM = 4 * 2**30


def scratch_dir() -> str | None:
    """Where throwaway servers keep their files: in memory (/dev/shm) where the machine has it
    with room to spare, else the default temporary directory (None).

    On ext4, a cluster under a temporary directory where files come and go all the run made
    each CREATE DATABASE from the template cost 0.3-0.5 s of the kernel looking for free
    inodes among recently deleted ones; in memory it costs 0.04 s. A test run makes hundreds.
    """
    shm = "/dev/shm"
    try:
        room = shutil.disk_usage(shm).free
    except OSError:
        return None
    return shm if room >= _SCRATCH_ROOM and os.access(shm, os.W_OK | os.X_OK) else None


@contextmanager
def postgres_server() -> Iterator[str]:
    if os.environ.get("DATABASE_URL"):
        yield os.environ["DATABASE_URL"]
        return
    with tempfile.TemporaryDirectory(prefix="chorus-pg-", dir=scratch_dir()) as tmp:
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
    with tempfile.TemporaryDirectory(prefix="chorus-nats-", dir=scratch_dir()) as tmp:
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
        self._count = 0

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
        self._count += 1
        name = f"{self.prefix}_{self._count}"
        conn = await self._admin()
        try:
            await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
        finally:
            await conn.close()
        self.made.append(name)
        return with_database(self.server_dsn, name)

    async def drop(self, url: str) -> None:
        """Drops a database `create` made, once its test is done with it (its connections
        closed or not): a run keeps only the databases its running tests use."""
        name = urlsplit(url).path.lstrip("/")
        conn = await self._admin()
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()
        self.made.remove(name)

    async def drop_all(self) -> None:
        conn = await self._admin()
        try:
            for name in [*self.made, self.template]:
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()
