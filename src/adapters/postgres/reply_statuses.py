"""The reply statuses process in PostgreSQL (`0057_reply_messages.sql`): the thread of each
outbound message on its runner's connection, its ports, and the process as a lane's member."""

from __future__ import annotations

from typing import TYPE_CHECKING

from adapters.postgres.campaign_enrollments import PostgresStreams
from adapters.postgres.event_store import PostgresEventStore
from adapters.postgres.process_ports import PostgresAggregateSaves
from adapters.postgres.processes import ProcessProjection

if TYPE_CHECKING:
    from collections.abc import Collection, Mapping
    from uuid import UUID

    import asyncpg

    from ports.processes import Process

__all__ = [
    "PostgresReplyMessages",
    "PostgresReplyStatusPorts",
    "ReplyStatusPortsOn",
    "ReplyStatusProjection",
]

_OF = "SELECT message_id, conversation_id FROM reply_messages WHERE message_id = ANY($1::uuid[])"
_ADD = """
INSERT INTO reply_messages (message_id, conversation_id)
SELECT * FROM unnest($1::uuid[], $2::uuid[])
ON CONFLICT (message_id) DO NOTHING
"""


class PostgresReplyMessages:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def of(self, message_ids: Collection[UUID]) -> dict[UUID, UUID]:
        rows = await self.conn.fetch(_OF, list(message_ids))
        return {row["message_id"]: row["conversation_id"] for row in rows}

    async def add(self, replies: Mapping[UUID, UUID]) -> None:
        await self.conn.execute(_ADD, list(replies), list(replies.values()))


class PostgresReplyStatusPorts:
    """The process's ports on one connection: a conversation is saved as the unit of work
    saves one, with its holder in the routing roster."""

    def __init__(self, conn: asyncpg.Connection, store: PostgresEventStore) -> None:
        self.conversations = PostgresAggregateSaves(conn, store)
        self.streams = PostgresStreams(conn, store)
        self.reply_messages = PostgresReplyMessages(conn)


class ReplyStatusPortsOn:
    """Binds the reply statuses process's ports to a connection."""

    def __init__(self, store: PostgresEventStore | None = None) -> None:
        self.store = store or PostgresEventStore()

    def __call__(self, conn: asyncpg.Connection) -> PostgresReplyStatusPorts:
        return PostgresReplyStatusPorts(conn, self.store)


class ReplyStatusProjection(ProcessProjection[PostgresReplyStatusPorts]):
    """The reply statuses process as a lane's member, on ports of its own."""

    def __init__(
        self, process: Process[PostgresReplyStatusPorts], ports: ReplyStatusPortsOn | None = None
    ) -> None:
        bound = ports or ReplyStatusPortsOn()
        super().__init__(process, bound, bound.store.codec)
