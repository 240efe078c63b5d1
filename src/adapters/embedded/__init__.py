"""PostgreSQL and NATS servers started from PyPI wheels, for ``chorus demo`` and the tests.

Plain blocking code: start them before the event loop runs, or in a thread.
"""

from __future__ import annotations

from adapters.embedded.nats import EmbeddedNats
from adapters.embedded.postgres import EmbeddedPostgres

__all__ = ["EmbeddedNats", "EmbeddedPostgres"]
