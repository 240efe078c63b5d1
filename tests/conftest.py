"""Fixtures shared by the integration and end-to-end tests."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import asyncpg
import pytest

from adapters.postgres.customer_keys import CUSTOMER_KEYS
from tests.servers import TestDatabases, nats_server, postgres_server

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator


@pytest.fixture(scope="session")
def postgres_dsn() -> Iterator[str]:
    """A PostgreSQL server: DATABASE_URL, or an embedded one for this test run."""
    with postgres_server() as dsn:
        yield dsn


@pytest.fixture(scope="session")
def nats_url() -> Iterator[str]:
    """A NATS server with JetStream: NATS_URL, or an embedded one for this test run."""
    with nats_server() as url:
        yield url


@pytest.fixture(scope="session")
async def databases(postgres_dsn: str) -> AsyncIterator[TestDatabases]:
    made = TestDatabases(postgres_dsn)
    await made.prepare()
    yield made
    if os.environ.get("DATABASE_URL"):
        # A server of the machine's keeps them otherwise (the template, and the databases of
        # tests that did not get to drop theirs); an embedded one goes with its data directory.
        await made.drop_all()


@pytest.fixture
async def database_url(databases: TestDatabases) -> AsyncIterator[str]:
    """A fresh, migrated database of its own for one test, dropped after it."""
    url = await databases.create()
    yield url
    await databases.drop(url)


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    # Customers' keys are kept per process, by customer id: a fresh database has none of them.
    CUSTOMER_KEYS.forget()
    created = await asyncpg.create_pool(database_url, min_size=1, max_size=20)
    yield created
    await created.close()
