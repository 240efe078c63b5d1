"""RandomIds: version 4 UUIDs, read from the OS's randomness a batch at a time, never repeated."""

from __future__ import annotations

import os
import threading
from uuid import RFC_4122

import pytest

from adapters.system.ids import RandomIds


class TestNewIds:
    def test_ids_are_random_version_4_uuids(self) -> None:
        made = [RandomIds().new_id() for _ in range(3)] + [RandomIds().new_id() for _ in range(3)]
        assert all(each.version == 4 and each.variant == RFC_4122 for each in made)
        assert len(set(made)) == len(made)

    def test_many_ids_across_batches_never_repeat(self) -> None:
        ids = RandomIds()
        made = [ids.new_id() for _ in range(2_000)]
        assert len(set(made)) == 2_000
        assert all(each.version == 4 for each in made)

    def test_threads_drawing_at_once_never_share_an_id(self) -> None:
        ids = RandomIds()
        drawn: list[list[object]] = [[] for _ in range(4)]

        def draw(into: list[object]) -> None:
            into.extend(ids.new_id() for _ in range(1_000))

        threads = [threading.Thread(target=draw, args=(into,)) for into in drawn]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        every = [each for one in drawn for each in one]
        assert len(set(every)) == len(every) == 4_000

    @pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
    def test_a_forked_child_does_not_repeat_its_parents_next_ids(self) -> None:
        ids = RandomIds()
        ids.new_id()  # a batch is drawn, most of it still to hand out
        read, write = os.pipe()
        child = os.fork()
        if child == 0:  # pragma: no cover - the child reports through the pipe
            try:
                os.write(write, b"".join(ids.new_id().bytes for _ in range(10)))
            finally:
                os._exit(0)
        os.close(write)
        with os.fdopen(read, "rb") as pipe:
            received = pipe.read()
        os.waitpid(child, 0)
        theirs = {received[at : at + 16] for at in range(0, len(received), 16)}
        ours = {ids.new_id().bytes for _ in range(10)}
        assert len(theirs) == 10
        assert not theirs & ours
