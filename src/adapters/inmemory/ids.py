"""Ids counted up from one, so a test names them and a failure reads them."""

from __future__ import annotations

from uuid import UUID

__all__ = ["SequentialIds"]


class SequentialIds:
    """00000000-0000-0000-0000-000000000001, then …02, and so on; `start` keeps two apart."""

    def __init__(self, start: int = 1) -> None:
        self.next = start

    def new_id(self) -> UUID:
        made = UUID(int=self.next)
        self.next += 1
        return made
