"""`chorus` commands keep the service's clock: with the manual one, they stamp what they record
at its time in PostgreSQL, as the running service does, not at the wall's."""

from __future__ import annotations

import asyncio
import os
import shlex
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from adapters.postgres.manual_clock import PostgresClockStore
from entrypoints.cli import _write_env
from entrypoints.ioc import make_container
from entrypoints.settings import Settings
from ports.clock import Clock

if TYPE_CHECKING:
    import asyncpg

pytestmark = pytest.mark.integration

SRC = Path(__file__).resolve().parents[2] / "src"
SET_TO = datetime(2031, 3, 4, 9, 30, tzinfo=UTC)  # far from the wall's time


def _environment(**chosen: str) -> dict[str, str]:
    """This process's environment without its Chorus settings, and the chosen ones."""
    kept = {k: v for k, v in os.environ.items() if not k.startswith(("CHORUS_", "DATABASE_URL"))}
    return {**kept, "PYTHONPATH": str(SRC), **chosen}


async def chorus(env: dict[str, str], *args: str) -> tuple[str, str]:
    """Runs `chorus ARGS` in a process of its own; its stdout and stderr."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "entrypoints.cli",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, err.decode()
    return out.decode().strip(), err.decode().strip()


async def created_key(env: dict[str, str]) -> str:
    _, said = await chorus(env, "keys", "create", "--role", "auditor", "--name", "audit")
    return said.split()[3]  # "created auditor key <id> (audit); ..."


async def key_change_times(pool: asyncpg.Pool) -> list[tuple[str, datetime]]:
    rows = await pool.fetch(
        "SELECT topic, occurred_at FROM events WHERE topic LIKE 'ApiKey.%' ORDER BY position"
    )
    return [(row["topic"], row["occurred_at"]) for row in rows]


class TestKeyChangesFromTheCli:
    async def test_create_rotate_and_revoke_are_recorded_at_the_manual_clocks_time(
        self, pool: asyncpg.Pool, database_url: str
    ) -> None:
        clock = PostgresClockStore(pool)
        env = _environment(DATABASE_URL=database_url, CHORUS_CLOCK="manual")
        await clock.save(SET_TO)
        key_id = await created_key(env)
        await clock.save(SET_TO + timedelta(hours=1))  # as POST /v1/admin/clock does
        await chorus(env, "keys", "rotate", key_id)
        await clock.save(SET_TO + timedelta(hours=2))
        await chorus(env, "keys", "revoke", key_id)

        assert await key_change_times(pool) == [
            ("ApiKey.Created", SET_TO),
            ("ApiKey.Rotated", SET_TO + timedelta(hours=1)),
            ("ApiKey.Revoked", SET_TO + timedelta(hours=2)),
        ]
        logged = await pool.fetch("SELECT change, at FROM api_key_changes ORDER BY at")
        assert [(r["change"], r["at"]) for r in logged] == [
            ("created", SET_TO),
            ("rotated", SET_TO + timedelta(hours=1)),
            ("revoked", SET_TO + timedelta(hours=2)),
        ]

    async def test_a_clock_nobody_set_is_where_the_service_started_it(
        self, pool: asyncpg.Pool, database_url: str
    ) -> None:
        container = make_container(Settings(database_url=database_url, clock="manual"))
        try:
            started = (await container.get(Clock)).now()  # the service, started before
        finally:
            await container.close()
        await asyncio.sleep(0.05)  # the wall moves on; the manual clock does not

        await created_key(_environment(DATABASE_URL=database_url, CHORUS_CLOCK="manual"))

        assert await key_change_times(pool) == [("ApiKey.Created", started)]

    async def test_the_demos_env_file_gives_the_cli_the_demos_clock(
        self, pool: asyncpg.Pool, database_url: str, tmp_path: Path
    ) -> None:
        _write_env(tmp_path, Settings(database_url=database_url, clock="manual"))
        written = dict(
            shlex.split(line)[0].split("=", 1)
            for line in (tmp_path / "env").read_text().splitlines()
        )
        assert written["CHORUS_CLOCK"] == "manual"
        await PostgresClockStore(pool).save(SET_TO)

        await created_key(_environment(**written))

        assert await key_change_times(pool) == [("ApiKey.Created", SET_TO)]


class TestTheManualClocksStart:
    async def test_the_first_start_is_kept_for_every_process_after_it(
        self, pool: asyncpg.Pool
    ) -> None:
        store = PostgresClockStore(pool)
        first = await store.start(SET_TO)
        again = await store.start(SET_TO + timedelta(days=1))
        assert (first, again, await store.load()) == (SET_TO, SET_TO, SET_TO)
