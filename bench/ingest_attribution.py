"""Attribution's CPU per signal, in one process, on a fixed seeded workload: a yardstick that a
loaded machine barely moves, for comparing two versions of the code run one after the other.

`python -m bench.ingest_attribution` (DATABASE_URL: a server where it may create a database):
intake receives one signal for each of `customers` customers, the attribution projection puts
them on their customers (each one new), then `known` signals about them picked at random, after
the keys kept in memory went out of their time (as for the projection worker, a process of its
own, when a burst arrives). It prints this process's CPU time per signal while attribution
runs, for the new customers and for the known ones, and their rates. Not in `make bench`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import asyncpg
import msgspec
import uvloop

from adapters.postgres.customer_keys import CUSTOMER_KEYS
from adapters.postgres.projections import ProjectionRunner
from adapters.postgres.signal_intake import PostgresSignalIntake
from adapters.postgres.unit_of_work import PostgresUnitsOfWork
from adapters.system.clock import SystemClock
from adapters.system.ids import RandomIds
from application.customer.signals import AttributeSignals, IngestSignals
from bench.servers import fresh_database
from domain.customer.identities import IdentityNormalizer
from domain.signals.document import ReceivedSignal, SignalIn, SignalReader
from entrypoints.heap import settle_heap

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["AttributionCpu", "attribution_cpu"]

_START = datetime(2026, 11, 27, 9, tzinfo=UTC)
_RECORDED = "SELECT count(*) FROM events WHERE topic LIKE '%:Signal.Recorded'"


@dataclass(frozen=True, slots=True)
class AttributionCpu:
    new_cpu_us_per_signal: float
    new_signals_per_s: float
    known_cpu_us_per_signal: float
    known_signals_per_s: float


def _document(seq: int, customer: int) -> dict[str, Any]:
    return {
        "id": f"attribution-{seq}",
        "type": ("page.viewed", "product.viewed")[seq % 2],
        "occurred_at": (_START + timedelta(milliseconds=seq)).isoformat(),
        "identities": [{"type": "email", "value": f"user{customer}@example.org"}],
        "properties": {"page": f"/products/{seq % 500}", "session": f"s{seq // 20}", "value": seq},
    }


async def attribution_cpu(dsn: str, customers: int, known: int, seed: int = 7) -> AttributionCpu:
    CUSTOMER_KEYS.forget()
    pool = await asyncpg.create_pool(dsn, min_size=2, max_size=10)
    try:
        clock = SystemClock()
        reader = SignalReader(IdentityNormalizer("GB"))
        intake = PostgresSignalIntake(pool)
        ingest = IngestSignals(PostgresUnitsOfWork(pool), clock, RandomIds())
        runner = ProjectionRunner(pool, [AttributeSignals(ingest, reader, intake, clock)])
        await runner.setup()

        async def receive(documents: Sequence[dict[str, Any]]) -> None:
            for start in range(0, len(documents), 1000):
                received: list[ReceivedSignal] = []
                for place, document in enumerate(documents[start : start + 1000]):
                    raw = msgspec.json.encode(document)
                    checked = reader.check(place, raw)
                    assert isinstance(checked, SignalIn), checked
                    received.append(reader.received(place, checked, raw))
                await intake.receive(received, clock.now())

        async def attributed(expected: int) -> tuple[float, float]:
            """CPU seconds spent catching up, and seconds until `expected` are recorded (the
            readable end of the log waits for other transactions on a shared server)."""
            cpu, started = 0.0, time.perf_counter()
            while True:
                before = time.process_time()
                await runner.catch_up()
                cpu += time.process_time() - before
                if await pool.fetchval(_RECORDED) >= expected:
                    return cpu, time.perf_counter() - started
                await asyncio.sleep(0.1)

        picks = random.Random(seed)
        await receive([_document(n, n) for n in range(customers)])
        settle_heap()
        new_cpu, new_seconds = await attributed(customers)
        await receive([_document(customers + n, picks.randrange(customers)) for n in range(known)])
        await asyncio.sleep(CUSTOMER_KEYS.ttl + 0.2)
        known_cpu, known_seconds = await attributed(customers + known)
        return AttributionCpu(
            round(new_cpu / customers * 1e6, 1),
            round(customers / new_seconds),
            round(known_cpu / known * 1e6, 1),
            round(known / known_seconds),
        )
    finally:
        await pool.close()


async def _main(customers: int, known: int) -> None:
    async with fresh_database(os.environ["DATABASE_URL"]) as dsn:
        print(msgspec.json.encode(await attribution_cpu(dsn, customers, known)).decode())


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=3000)
    parser.add_argument("--known", type=int, default=20000)
    args = parser.parse_args()
    uvloop.run(_main(args.customers, args.known))
