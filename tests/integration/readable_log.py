"""Waiting for the log to be readable. Its readers (the projection runner, the event store's
`read_topics`) read only the events below the server's horizon: the oldest write transaction
still open anywhere on the server. On a server shared with other tests' databases, their
transactions hold it back for a while after a test's own appends have committed, so a test
that appends and then reads the log once waits for this first."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from adapters.postgres.event_store import LogPosition
from adapters.postgres.projections import READABLE_END

if TYPE_CHECKING:
    import asyncpg

    from adapters.postgres.projections import ProjectionRunner

# The last event committed, readable or not: the order names the table's columns, which the
# log's index holds.
_LAST_COMMITTED = """
SELECT events.transaction_id::text::bigint, events.position FROM events
ORDER BY events.transaction_id DESC, events.position DESC LIMIT 1
"""
WITHIN = 30.0  # seconds: another test's transactions last a few at most


async def log_readable(pool: asyncpg.Pool, within: float = WITHIN) -> None:
    """Waits until the readable end of the log, as the runner polls it, has reached the last
    event committed before the call; fails if it has not within `within` seconds."""
    last = await pool.fetchrow(_LAST_COMMITTED)
    if last is None:
        return
    committed = LogPosition(last[0], last[1])
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        row = await pool.fetchrow(READABLE_END)
        end = LogPosition() if row is None else LogPosition(row[0], row[1])
        if end >= committed:
            return
        if loop.time() >= deadline:
            raise AssertionError(
                f"the log's readable end stayed at {end}, short of the last event committed"
                f" ({committed}), for {within:.0f} s: a write transaction open elsewhere on the"
                " server holds the horizon back"
            )
        await asyncio.sleep(0.02)


def reading_every_commit(runner: ProjectionRunner, pool: asyncpg.Pool) -> ProjectionRunner:
    """The runner, made to wait before each page it catches up until the log is readable to
    its last committed event: a round reads what its earlier projections (processes) wrote in
    it, and every page what the test appended, as on a server of the test run's own."""
    runner.before_page = lambda: log_readable(pool)
    return runner
