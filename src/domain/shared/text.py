"""Text PostgreSQL can store and a person can read: no control characters, no lone surrogates."""

from __future__ import annotations

import re

__all__ = ["has_control", "readable"]

# C0 and C1 controls and lone surrogates; tab, line feed and carriage return are text.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
_ANY_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def has_control(value: str) -> bool:
    """Whether a one-line value (an identifier, a name) holds any control character."""
    return _ANY_CONTROL.search(value) is not None


def readable(text: str) -> str:
    """Free text with each control character or lone surrogate replaced by U+FFFD, so what a
    provider sent is kept, and stored, rather than refused."""
    return _CONTROL.sub("\ufffd", text)
