"""How large a count a document may give: one PostgreSQL and every JSON reader hold exactly.

A count beyond it (`99999999999999999999`, past 64 bits) reads as a Python int, but a
PostgreSQL integer cannot hold it, nor a JSON reader that keeps numbers as doubles: readers of
documents refuse it by its path, before anything is stored. Stored documents are read without
the check, so none that was published before it becomes unreadable.
"""

from __future__ import annotations

__all__ = ["MAX_COUNT", "count_fault"]

MAX_COUNT = 2**31 - 1
"""A count a document gives, at most: a cap, a limit, signals or open conversations."""


def count_fault(count: int) -> str | None:
    """Why `count` cannot be a document's count; None when it can."""
    return f"at most {MAX_COUNT:,}" if count > MAX_COUNT else None
