"""The answers kept for writes made with an idempotency key, in `write_answers`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ports.write_answers import KeptAnswer

if TYPE_CHECKING:
    import asyncpg

__all__ = ["PostgresWriteAnswers"]

_EARLIER = """
SELECT fingerprint, status_code, body FROM write_answers WHERE scope = $1 AND idempotency_key = $2
"""
# A racing twin that kept its answer first wins: the insert does nothing and the select in the
# same statement cannot see the twin's row, so the winner is read after.
_KEEP = """
INSERT INTO write_answers (scope, idempotency_key, fingerprint, status_code, body)
VALUES ($1, $2, $3, $4, $5) ON CONFLICT (scope, idempotency_key) DO NOTHING
"""


class PostgresWriteAnswers:
    """WriteAnswers on PostgreSQL: the primary key settles which answer stands."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def earlier(self, scope: str, key: str) -> KeptAnswer | None:
        row = await self.pool.fetchrow(_EARLIER, scope, key)
        return None if row is None else KeptAnswer(bytes(row[0]), row[1], bytes(row[2]))

    async def keep(self, scope: str, key: str, answer: KeptAnswer) -> KeptAnswer:
        status = await self.pool.execute(
            _KEEP, scope, key, answer.fingerprint, answer.status_code, answer.body
        )
        if status.endswith(" 1"):
            return answer
        kept = await self.earlier(scope, key)
        assert kept is not None  # rows are never deleted
        return kept
