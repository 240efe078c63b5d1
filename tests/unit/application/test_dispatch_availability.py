"""What a channel's providers take together, which decides how much a dispatch lane claims."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from adapters.system.clock import ManualClock
from application.delivery.dispatch import DispatchMessages
from domain.policy.vocabulary import Channel
from ports.providers import Availability

if TYPE_CHECKING:
    from collections.abc import Sequence
    from decimal import Decimal


class Plain:
    """A provider without guards."""

    channel = Channel.SMS


class Breakered(Plain):
    def __init__(self, available: Availability) -> None:
        self.available = available

    def availability(self) -> Availability:
        return self.available


class Directory:
    def __init__(self, *providers: Any) -> None:
        self.providers = providers

    def for_channel(self, channel: Channel) -> Sequence[Any]:
        return [p for p in self.providers if p.channel is channel]

    def get(self, name: str) -> Any:
        return None

    def price(self, provider_name: str, recipient: str) -> tuple[Decimal, str] | None:
        return None


CLOSED = Availability()
TRIAL = Availability(1)


def opened(wait: float) -> Availability:
    return Availability(0, wait)


@pytest.mark.parametrize(
    ("providers", "expected"),
    [
        ((), CLOSED),  # no provider: the rounds record why
        ((Plain(),), CLOSED),
        ((Breakered(opened(20)), Breakered(CLOSED)), CLOSED),  # failover to the closed one
        ((Breakered(opened(20)), Plain()), CLOSED),
        ((Breakered(opened(20)), Breakered(opened(5))), opened(5)),  # the first trial due
        ((Breakered(opened(20)), Breakered(TRIAL)), TRIAL),
        ((Breakered(TRIAL), Breakered(TRIAL)), Availability(2)),
    ],
)
def test_a_channel_takes_what_its_providers_take_together(
    providers: tuple[Any, ...], expected: Availability
) -> None:
    dispatch = DispatchMessages(None, Directory(*providers), ManualClock())  # type: ignore[arg-type]
    assert dispatch.availability(Channel.SMS) == expected
