"""Journey documents the campaign tests share: the worked example of `journey.py`, and parts."""

from __future__ import annotations

import copy
import re
from typing import Any

import msgspec

from domain.campaign import journey as journey_module
from domain.campaign.journey import Journey
from domain.campaign.journey_reader import decode_journey

TEMPLATES = frozenset({"order-follow-up", "ten-off", "free-shipping", "welcome"})
SEGMENTS = frozenset({"vip", "lapsed-buyers"})

_EXAMPLE = re.search(r"```json\n(.*?)```", journey_module.__doc__ or "", re.DOTALL)
assert _EXAMPLE is not None
EXAMPLE: dict[str, Any] = msgspec.json.decode(_EXAMPLE.group(1))
"""The worked example of the journey module's docstring."""


def example() -> dict[str, Any]:
    return copy.deepcopy(EXAMPLE)


def send(template: str = "welcome", **more: Any) -> dict[str, Any]:
    return {
        "type": "send",
        "channels": ["email"],
        "template": template,
        "purpose": "marketing",
        "team": "growth",
        **more,
    }


def journey(steps: dict[str, Any], start: str | None = None, **more: Any) -> dict[str, Any]:
    """A journey entered through the API, beginning at `start` (the first step if not given)."""
    return {"entry": {"type": "api"}, "start": start or next(iter(steps)), "steps": steps, **more}


def read(document: dict[str, Any]) -> Journey:
    return decode_journey(document, templates=TEMPLATES, segments=SEGMENTS)
