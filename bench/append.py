"""One command on one Customer aggregate vs. a raw single-row commit, at the same concurrency.

Each concurrent worker runs `UpdateProfile` on its own pre-created customer (cached after a first
command), changing an attribute every time so that every command appends one event. The baseline
worker commits one `INSERT` of a similar-sized row into a table with a primary key.
"""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import asyncpg

from adapters.postgres.unit_of_work import PostgresUnitsOfWork
from adapters.system.clock import SystemClock
from application.customer.update_profile import UpdateProfile
from bench.timing import rate_for
from domain.customer.aggregate import Customer
from domain.customer.identities import Identity, IdentityClaim

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

__all__ = ["TARGET_RATIO", "AppendConfig", "run_append"]

TARGET_RATIO = 0.6

_RAW_TABLE = """
CREATE TABLE IF NOT EXISTS bench_raw (
    id uuid PRIMARY KEY, stream uuid NOT NULL, n integer NOT NULL, payload text NOT NULL
)
"""
_RAW_INSERT = "INSERT INTO bench_raw (id, stream, n, payload) VALUES ($1, $2, $3, $4)"
# About the size of a ProfileUpdated row's topic, timestamps and JSON payload together.
_RAW_PAYLOAD = (
    '{{"topic":"domain.customer.aggregate:Customer.ProfileUpdated","class_version":1,'
    '"occurred_at":"{at}","profile":{{}},"attributes":{{"counter":{n}}}}}'
)


@dataclass(frozen=True, slots=True)
class AppendConfig:
    concurrencies: tuple[int, ...] = (1, 4, 16)
    duration: float = 5.0  # per side and concurrency, split over `rounds`
    warmup: float = 1.0
    rounds: int = 2


async def _register(store: PostgresUnitsOfWork, count: int) -> list[uuid.UUID]:
    now = datetime.now(UTC)
    ids = [uuid.uuid4() for _ in range(count)]
    customers = [
        Customer.register(cid, now, (IdentityClaim(Identity("email", f"{cid}@example.org")),))
        for cid in ids
    ]
    async with store() as uow:
        await uow.identities.claim({identity: c.id for c in customers for identity in c.identities})
        uow.repository(Customer).add(*customers)
    return [c.id for c in customers]


def _command(update: UpdateProfile, customer_id: uuid.UUID) -> Callable[[], Awaitable[None]]:
    counter = itertools.count()

    async def run() -> None:
        if not await update(customer_id, {}, {"counter": next(counter)}):
            raise RuntimeError("UpdateProfile recorded nothing")

    return run


def _raw_commit(pool: asyncpg.Pool) -> Callable[[], Awaitable[None]]:
    stream = uuid.uuid4()
    counter = itertools.count()

    async def run() -> None:
        n = next(counter)
        at = datetime.now(UTC)
        await pool.execute(
            _RAW_INSERT, uuid.uuid4(), stream, n, _RAW_PAYLOAD.format(at=at.isoformat(), n=n)
        )

    return run


async def _interleaved(
    sides: tuple[list[Callable[[], Awaitable[None]]], ...], config: AppendConfig
) -> list[float]:
    """Warms each side up, then alternates them in rounds so drift hits both alike."""
    for workers in sides:
        await rate_for(config.warmup, workers)
    totals = [0.0] * len(sides)
    for round_ in range(config.rounds):
        order = range(len(sides)) if round_ % 2 == 0 else reversed(range(len(sides)))
        for index in order:
            totals[index] += await rate_for(config.duration / config.rounds, sides[index])
    return [total / config.rounds for total in totals]


async def _at_concurrency(dsn: str, concurrency: int, config: AppendConfig) -> dict[str, Any]:
    pool = await asyncpg.create_pool(dsn, min_size=concurrency, max_size=concurrency)
    try:
        await pool.execute(_RAW_TABLE)
        raw = [_raw_commit(pool) for _ in range(concurrency)]
        store = PostgresUnitsOfWork(pool)
        update = UpdateProfile(store, SystemClock())
        commands = [_command(update, cid) for cid in await _register(store, concurrency)]
        for command in commands:  # the aggregate cache holds each customer from here on
            await command()
        raw_rate, command_rate = await _interleaved((raw, commands), config)
    finally:
        await pool.close()
    ratio = command_rate / raw_rate
    return {
        "concurrency": concurrency,
        "pool_size": concurrency,
        "commands_per_s": round(command_rate, 1),
        "raw_commits_per_s": round(raw_rate, 1),
        "ratio": round(ratio, 3),
        "meets_target": ratio >= TARGET_RATIO,
    }


async def run_append(dsn: str, config: AppendConfig) -> dict[str, Any]:
    """Measures every concurrency of `config` on the database `dsn`."""
    results = [await _at_concurrency(dsn, c, config) for c in config.concurrencies]
    return {
        "benchmark": "append",
        "command": "UpdateProfile(PostgresUnitsOfWork(pool), SystemClock())"
        "(customer_id, {}, {'counter': n})",
        "baseline": "pool.execute(INSERT INTO bench_raw (id, stream, n, payload) ...) "
        "one row per commit, ~170-byte payload",
        "duration_s": config.duration,
        "warmup_s": config.warmup,
        "rounds": config.rounds,
        "target_ratio": TARGET_RATIO,
        "meets_target": all(r["meets_target"] for r in results),
        "results": results,
    }
