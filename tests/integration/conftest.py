"""Fixtures the integration tests share."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from adapters.templates.jinja import JinjaRenderer

if TYPE_CHECKING:
    from collections.abc import AsyncIterator


@pytest.fixture
async def renderer() -> AsyncIterator[JinjaRenderer]:
    """Templates' renderer (a process pool of its own), closed after the test."""
    made = JinjaRenderer()
    yield made
    made.close()
