from __future__ import annotations

import contextlib
import json
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import asyncpg
import nats
import pytest

from adapters.postgres.api_keys import PostgresApiKeyStore
from adapters.postgres.manual_clock import PostgresClockStore
from adapters.providers.fakes.email_api_server import FakeEmailApi
from adapters.providers.fakes.webhooks import StatusCallbacks
from adapters.system.clock import ManualClock
from adapters.system.ids import RandomIds
from ports.api_keys import Role
from tests.e2e.service import ChorusProcess, prepared_model_dir

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Mapping

    from tests.servers import TestDatabases


def pytest_collection_finish(session: pytest.Session) -> None:
    """The services these suites start classify with one shared intent model: it is made ready
    here, once per worker, before any test's time runs (on a fresh clone the first worker
    trains it, about a minute, and the other waits for it and loads it)."""
    if session.config.option.collectonly:
        return
    here = Path(__file__).parent
    if any(item.path.is_relative_to(here) for item in session.items):
        prepared_model_dir()


async def _delete_streams(service: ChorusProcess) -> None:
    nc = await nats.connect(service.nats_url)
    try:
        js = nc.jetstream()
        for name in (service.signal_stream, service.dead_letter_stream, service.outbound_stream):
            with contextlib.suppress(Exception):
                await js.delete_stream(name)
    finally:
        await nc.close()


@contextlib.asynccontextmanager
async def bouncing_email(
    database_url: str, nats_url: str, log: Path, **provider: object
) -> AsyncIterator[tuple[ChorusProcess, FakeEmailApi]]:
    """Chorus with one email provider (`email_api`, with `provider`'s fields added) whose every
    message bounces, and that provider's fake."""
    chorus = ChorusProcess(database_url, nats_url, f"E2E_{uuid.uuid4().hex[:8].upper()}", log)
    email = FakeEmailApi(
        callbacks=StatusCallbacks(url=f"{chorus.base_url}/v1/webhooks/email", status="bounced")
    )
    email.start()
    configured = {
        "name": "email",
        "type": "email_api",
        "base_url": email.base_url,
        "api_key": email.api_key,
        "webhook_secret": email.webhook_secret,
        **provider,
    }
    chorus.env["CHORUS_PROVIDERS"] = json.dumps([configured])
    chorus.admin_key = await create_admin_key(database_url)  # type: ignore[attr-defined]
    chorus.start()
    try:
        yield chorus, email
    finally:
        chorus.stop()
        email.stop()
        await _delete_streams(chorus)


async def create_admin_key(database_url: str) -> str:
    """An admin key, made as `chorus keys create --role admin` makes it, without a process of
    its own for each service the suite starts."""
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=1)
    try:
        clock = ManualClock(await PostgresClockStore(pool).load())
        store = PostgresApiKeyStore(pool, clock, RandomIds())
        created = await store.create(Role.ADMIN, "cli", agent=None, teams=[], by="e2e")
        return created.secret
    finally:
        await pool.close()


@contextlib.asynccontextmanager
async def prepared_chorus(
    database_url: str, nats_url: str, log_path: Path
) -> AsyncIterator[ChorusProcess]:
    """A service on its own database and streams, with an admin key as `admin_key`, not
    started: its user sets its environment or database first and starts it. Stopped, and its
    streams deleted, after."""
    service = ChorusProcess(database_url, nats_url, f"E2E_{uuid.uuid4().hex[:8].upper()}", log_path)
    service.admin_key = await create_admin_key(database_url)  # type: ignore[attr-defined]
    try:
        yield service
    finally:
        service.stop()
        await _delete_streams(service)


@contextlib.asynccontextmanager
async def running_chorus(
    database_url: str, nats_url: str, log_path: Path, env: Mapping[str, str] | None = None
) -> AsyncIterator[ChorusProcess]:
    """A service on its own database and streams, with an admin key as `admin_key`, and the
    settings `env` adds (its providers, say)."""
    async with prepared_chorus(database_url, nats_url, log_path) as service:
        service.env.update(env or {})
        service.start()
        yield service


@pytest.fixture
async def chorus(database_url: str, nats_url: str, tmp_path: Path) -> AsyncIterator[ChorusProcess]:
    """A running service with a fresh database and streams; `chorus.admin_key` is an admin key."""
    async with running_chorus(database_url, nats_url, tmp_path / "chorus.log") as service:
        yield service


@pytest.fixture
async def alone(database_url: str, nats_url: str, tmp_path: Path) -> AsyncIterator[ChorusProcess]:
    """A service of the test's own in a module whose tests share one (`chorus` there being
    `shared_chorus`): for a test that moves the clock or reads what is the whole service's (every
    agent, the routing document, whole listings)."""
    async with running_chorus(database_url, nats_url, tmp_path / "chorus.log") as service:
        yield service


@contextlib.asynccontextmanager
async def module_chorus(
    databases: TestDatabases,
    nats_url: str,
    tmp_path_factory: pytest.TempPathFactory,
    env: Mapping[str, str] | None = None,
) -> AsyncIterator[ChorusProcess]:
    """A service on a database of its own, dropped after it: what a module's tests share."""
    database_url = await databases.create()
    log_path = tmp_path_factory.mktemp("chorus") / "chorus.log"
    async with running_chorus(database_url, nats_url, log_path, env) as service:
        yield service
    await databases.drop(database_url)


@pytest.fixture(scope="module")
async def shared_chorus(
    databases: TestDatabases, nats_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[ChorusProcess]:
    """One running service for a whole module, whose tests each make and read their own
    customers, messages and names, and never move the manual clock."""
    async with module_chorus(databases, nats_url, tmp_path_factory) as service:
        yield service
