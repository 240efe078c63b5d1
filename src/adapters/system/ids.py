"""Random UUIDs."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING
from uuid import UUID
from weakref import WeakSet

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["RandomIds"]

_BATCH = 256  # ids made of one read of the operating system's randomness


class RandomIds:
    """Version 4 UUIDs from the operating system's randomness, as `uuid.uuid4` makes them, read
    for `_BATCH` ids at a time: one system call a batch rather than one an id (a broadcast
    makes two ids a send, and a system call costs more than the rest of making the id). Taking
    the next id of a batch is one step of a list iterator, atomic under the GIL, so threads
    never share one; a forked child drops the batch it inherited, so it never repeats its
    parent's ids."""

    def __init__(self) -> None:
        self._batch: Iterator[UUID] = iter(())
        _LIVE.add(self)

    def new_id(self) -> UUID:
        made = next(self._batch, None)
        if made is None:
            self._batch = batch = _drawn()
            made = next(batch)
        return made

    def _forget(self) -> None:
        self._batch = iter(())


# What `UUID(..., version=4)` does to 128 random bits: the variant's two bits and the
# version's four set, done here on the integer so that the UUID is built from it directly.
_CLEAR = ~((0xC000 << 48) | (0xF000 << 64))
_VERSION_4 = (0x8000 << 48) | (0x4000 << 64)


def _drawn() -> Iterator[UUID]:
    random = os.urandom(16 * _BATCH)
    return iter(
        [
            UUID(int=(int.from_bytes(random[at : at + 16]) & _CLEAR) | _VERSION_4)
            for at in range(0, len(random), 16)
        ]
    )


_LIVE: WeakSet[RandomIds] = WeakSet()


def _forget_all() -> None:
    for ids in list(_LIVE):
        ids._forget()


os.register_at_fork(after_in_child=_forget_all)
