"""The embedded PostgreSQL and NATS servers start, serve, stop cleanly and survive kill -9."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import asyncpg
import nats
import psutil
import pytest

from adapters.embedded import EmbeddedNats, EmbeddedPostgres

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

pytestmark = pytest.mark.integration


@pytest.fixture
def tmp_path() -> Iterator[Path]:
    """A directory outside pytest's own temp tree: that one is 0700, so the unprivileged user
    PostgreSQL runs as (when we are root) cannot enter it, and a second pytest session locks it
    again when it starts."""
    path = Path(tempfile.mkdtemp(prefix="chorus-embedded-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def make_postgres() -> Iterator[Callable[..., EmbeddedPostgres]]:
    """Builds servers for a test and stops every one of them afterwards, even on failure."""
    servers: list[EmbeddedPostgres] = []

    def make(data_dir: Path, *, fast_unsafe: bool = True) -> EmbeddedPostgres:
        server = EmbeddedPostgres(data_dir, fast_unsafe=fast_unsafe)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


@pytest.fixture
def make_nats() -> Iterator[Callable[[Path], EmbeddedNats]]:
    servers: list[EmbeddedNats] = []

    def make(store_dir: Path) -> EmbeddedNats:
        server = EmbeddedNats(store_dir)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


def postgres_processes(data_dir: Path) -> list[psutil.Process]:
    """Live postgres processes (postmaster and backends) working in data_dir."""
    found = []
    for process in psutil.process_iter(["name", "cwd", "status"]):
        if (
            process.info["name"] == "postgres"
            and process.info["cwd"] == str(data_dir.resolve())
            and process.info["status"] != psutil.STATUS_ZOMBIE
        ):
            found.append(process)
    return found


def postmaster_pid(data_dir: Path) -> int:
    return int((data_dir / "postmaster.pid").read_text().splitlines()[0])


async def fetch_one(dsn: str, query: str) -> object:
    connection = await asyncpg.connect(dsn)
    try:
        return await connection.fetchval(query)
    finally:
        await connection.close()


async def test_postgres_gives_a_dsn_asyncpg_can_query_and_stop_leaves_no_process(
    tmp_path: Path, make_postgres: Callable[..., EmbeddedPostgres]
) -> None:
    data_dir = tmp_path / "pg"
    server = make_postgres(data_dir)

    dsn = await asyncio.to_thread(server.start)

    assert dsn == f"postgresql://postgres@127.0.0.1:{server.port}/postgres"
    assert server.dsn == dsn
    assert await fetch_one(dsn, "select 1") == 1
    assert await fetch_one(dsn, "show max_connections") == "200"
    assert await fetch_one(dsn, "show fsync") == "off"
    assert postgres_processes(data_dir)

    await asyncio.to_thread(server.stop)

    assert postgres_processes(data_dir) == []
    assert not (data_dir / "postmaster.pid").exists()
    server.stop()  # idempotent


async def test_postgres_started_again_on_the_same_data_dir_finds_its_data(
    tmp_path: Path, make_postgres: Callable[..., EmbeddedPostgres]
) -> None:
    data_dir = tmp_path / "pg"
    first = make_postgres(data_dir)
    dsn = await asyncio.to_thread(first.start)
    connection = await asyncpg.connect(dsn)
    await connection.execute("create table kept (value text); insert into kept values ('here')")
    await connection.close()
    await asyncio.to_thread(first.stop)

    second = make_postgres(data_dir)
    dsn = await asyncio.to_thread(second.start)

    assert await fetch_one(dsn, "select value from kept") == "here"


async def test_postgres_starts_after_its_server_was_killed_with_sigkill(
    tmp_path: Path, make_postgres: Callable[..., EmbeddedPostgres]
) -> None:
    data_dir = tmp_path / "pg"
    # Durable settings: with fast_unsafe a crash loses the last commits (synchronous_commit=off).
    first = make_postgres(data_dir, fast_unsafe=False)
    dsn = await asyncio.to_thread(first.start)
    connection = await asyncpg.connect(dsn)
    await connection.execute("create table kept (value text); insert into kept values ('here')")
    await connection.close()

    assert first.pid == postmaster_pid(data_dir)
    os.kill(first.pid, signal.SIGKILL)  # leaves a stale postmaster.pid behind

    second = make_postgres(data_dir)
    dsn = await asyncio.to_thread(second.start)

    assert await fetch_one(dsn, "select value from kept") == "here"
    await asyncio.to_thread(second.stop)
    assert postgres_processes(data_dir) == []


async def test_postgres_orphaned_by_its_owner_is_shut_down_and_replaced_keeping_the_data(
    tmp_path: Path, make_postgres: Callable[..., EmbeddedPostgres]
) -> None:
    data_dir = tmp_path / "pg"
    orphaned = make_postgres(data_dir)  # as if its owner died by kill -9 without stopping it
    old_dsn = await asyncio.to_thread(orphaned.start)
    await fetch_one(old_dsn, "create table kept as select 'here' as value")
    old_pid = postmaster_pid(data_dir)

    replacement = make_postgres(data_dir)
    dsn = await asyncio.to_thread(replacement.start)

    assert not psutil.pid_exists(old_pid) or psutil.Process(old_pid).status() == "zombie"
    assert await fetch_one(dsn, "select value from kept") == "here"


def test_postgres_data_dir_with_a_path_too_long_for_a_unix_socket_still_works(
    tmp_path: Path, make_postgres: Callable[..., EmbeddedPostgres]
) -> None:
    data_dir = tmp_path / ("d" * 100)
    server = make_postgres(data_dir)

    server.start()

    assert postgres_processes(data_dir)
    server.stop()
    assert postgres_processes(data_dir) == []


def test_postgres_that_dies_during_startup_raises_with_the_end_of_its_log(
    tmp_path: Path,
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        server = EmbeddedPostgres(tmp_path / "pg", port=taken.getsockname()[1], fast_unsafe=True)

        with pytest.raises(RuntimeError, match="Address already in use"):
            server.start()

    server.stop()


async def test_nats_starts_with_jetstream_that_drops_a_duplicate_msg_id(
    tmp_path: Path, make_nats: Callable[[Path], EmbeddedNats]
) -> None:
    server = make_nats(tmp_path / "nats")

    url = await asyncio.to_thread(server.start)

    assert url == f"nats://127.0.0.1:{server.port}"
    assert server.url == url
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        await js.add_stream(name="EVENTS", subjects=["events.>"])
        first = await js.publish("events.a", b"1", headers={"Nats-Msg-Id": "m-1"})
        second = await js.publish("events.a", b"1", headers={"Nats-Msg-Id": "m-1"})
        assert not first.duplicate
        assert second.duplicate
        assert (await js.stream_info("EVENTS")).state.messages == 1
    finally:
        await nc.close()

    assert server.pid is not None
    process = psutil.Process(server.pid)
    await asyncio.to_thread(server.stop)

    assert not process.is_running()
    assert server.pid is None
    server.stop()  # idempotent


async def test_nats_starts_after_its_server_was_killed_with_sigkill_keeping_its_streams(
    tmp_path: Path, make_nats: Callable[[Path], EmbeddedNats]
) -> None:
    store_dir = tmp_path / "nats"
    first = make_nats(store_dir)
    nc = await nats.connect(await asyncio.to_thread(first.start))
    await nc.jetstream().add_stream(name="EVENTS", subjects=["events.>"])
    await nc.jetstream().publish("events.a", b"1")
    await nc.close()
    assert first.pid is not None
    os.kill(first.pid, signal.SIGKILL)

    second = make_nats(store_dir)
    nc = await nats.connect(await asyncio.to_thread(second.start))
    try:
        assert (await nc.jetstream().stream_info("EVENTS")).state.messages == 1
    finally:
        await nc.close()


async def test_nats_orphaned_by_its_owner_is_stopped_and_replaced(
    tmp_path: Path, make_nats: Callable[[Path], EmbeddedNats]
) -> None:
    store_dir = tmp_path / "nats"
    orphaned = make_nats(store_dir)  # as if its owner died by kill -9 without stopping it
    await asyncio.to_thread(orphaned.start)
    assert orphaned.pid is not None
    old_process = psutil.Process(orphaned.pid)

    replacement = make_nats(store_dir)
    url = await asyncio.to_thread(replacement.start)

    assert not old_process.is_running() or old_process.status() == psutil.STATUS_ZOMBIE
    nc = await nats.connect(url)
    await nc.close()


def test_nats_that_dies_during_startup_raises_with_the_end_of_its_log(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        server = EmbeddedNats(tmp_path / "nats", port=taken.getsockname()[1])

        with pytest.raises(RuntimeError, match="address already in use"):
            server.start()

    assert server.pid is None
    server.stop()
