from __future__ import annotations

import asyncio
from typing import Any, cast

from entrypoints.projection_worker import BellRelay, written_in


class Published:
    """Stands in for the NATS client: keeps what was published."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes]] = []

    async def publish(self, subject: str, data: bytes) -> None:
        self.sent.append((subject, data))


async def relayed(*rings: frozenset[str] | None) -> list[tuple[str, bytes]]:
    nc = Published()
    relay = BellRelay(cast("Any", nc), "chorus.internal.commits")
    for topics in rings:
        relay(topics)
    for _ in range(3):  # the send is scheduled, then publishes
        await asyncio.sleep(0)
    return nc.sent


class TestBellRelay:
    async def test_the_commits_of_one_loop_turn_go_as_one_message_with_all_their_topics(
        self,
    ) -> None:
        sent = await relayed(frozenset({"b", "a"}), frozenset({"c", "a"}))
        assert len(sent) == 1
        assert written_in(sent[0][1]) == frozenset({"a", "b", "c"})

    async def test_a_commit_of_unknown_topics_makes_the_message_wake_every_lane(self) -> None:
        sent = await relayed(frozenset({"a"}), None, frozenset({"b"}))
        assert len(sent) == 1
        assert written_in(sent[0][1]) is None

    async def test_a_later_turn_sends_only_its_own_topics(self) -> None:
        nc = Published()
        relay = BellRelay(cast("Any", nc), "chorus.internal.commits")
        relay(None)
        for _ in range(3):
            await asyncio.sleep(0)
        relay(frozenset({"a"}))
        for _ in range(3):
            await asyncio.sleep(0)
        assert [written_in(data) for _, data in nc.sent] == [None, frozenset({"a"})]
