"""PostgreSQL and NATS for a run: from DATABASE_URL / NATS_URL, else embedded in a temp dir."""

from __future__ import annotations

import os
import tempfile
import uuid
from contextlib import ExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from adapters.embedded.nats import EmbeddedNats
from adapters.embedded.postgres import EmbeddedPostgres
from adapters.postgres.migrations import migrate

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

__all__ = ["Servers", "fresh_database", "running_servers", "with_database"]

Source = Literal["embedded", "env"]


@dataclass(frozen=True, slots=True)
class Servers:
    database_url: str
    nats_url: str
    postgres: Source
    nats: Source


@contextmanager
def running_servers() -> Iterator[Servers]:
    """The servers named in the environment, or embedded ones (durable: fsync on) stopped after."""
    database_url = os.environ.get("DATABASE_URL")
    nats_url = os.environ.get("NATS_URL")
    with ExitStack() as stack:
        if not database_url or not nats_url:
            # /tmp: when we are root, the postgres user must be able to traverse every parent.
            tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="chorus-bench-")))
        if not database_url:
            # not fast_unsafe: commits are durable; with_parent: a kill -9 of the bench takes it along
            postgres = EmbeddedPostgres(tmp / "postgres", with_parent=True)
            stack.callback(postgres.stop)
            database_url = postgres.start()
        if not nats_url:
            nats_server = EmbeddedNats(tmp / "nats", with_parent=True)
            stack.callback(nats_server.stop)
            nats_url = nats_server.start()
        yield Servers(
            database_url,
            nats_url,
            postgres="env" if os.environ.get("DATABASE_URL") else "embedded",
            nats="env" if os.environ.get("NATS_URL") else "embedded",
        )


def with_database(dsn: str, name: str) -> str:
    return urlunsplit(urlsplit(dsn)._replace(path="/" + name))


@asynccontextmanager
async def fresh_database(server_dsn: str) -> AsyncIterator[str]:
    """A new migrated database `bench_<uuid>`, dropped WITH (FORCE) afterwards."""
    name = f"bench_{uuid.uuid4().hex}"
    admin = await asyncpg.connect(server_dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        dsn = with_database(server_dsn, name)
        try:
            await migrate(dsn)
            yield dsn
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()
