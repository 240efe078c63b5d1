"""When NATS (or PostgreSQL) is away rather than a message at fault."""

from __future__ import annotations

import nats.errors
import nats.js.errors

from adapters.postgres.projections import is_outage

__all__ = ["is_bus_outage"]

# NATS away, reconnecting or without the stream: the events wait, none is parked. A message
# too big for the server, say, is the event's own fault, and parked like any other.
_NATS_OUTAGES = (
    nats.errors.ConnectionClosedError,
    nats.errors.ConnectionReconnectingError,
    nats.errors.ConnectionDrainingError,
    nats.errors.NoServersError,
    nats.errors.NoRespondersError,
    nats.errors.OutboundBufferLimitError,
    nats.errors.StaleConnectionError,
    nats.js.errors.NoStreamResponseError,
    nats.js.errors.ServiceUnavailableError,
)


def is_bus_outage(error: BaseException) -> bool:
    """An outage of NATS or PostgreSQL, judged by the error and its causes: what publishes
    to the bus waits it out."""
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, _NATS_OUTAGES):
            return True
        cause = cause.__cause__
    return is_outage(error)
