"""Benchmark signals, and the same signals as HTTP bodies, NATS messages and raw table rows."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

import msgspec

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

__all__ = [
    "RawRow",
    "SignalFactory",
    "batches",
    "http_bodies",
    "nats_batch_messages",
    "nats_messages",
    "raw_rows",
]

_TYPES = ("page.viewed", "product.viewed", "cart.updated", "email.opened")
_START = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
_encode = msgspec.json.Encoder().encode

RawRow = tuple[str, str, datetime, str, str]
T = TypeVar("T")


@dataclass
class SignalFactory:
    """Signals with unique ids about `customers` email identities, `user{n}@example.org`."""

    run: str
    customers: int
    seed: int = 7
    _next: int = 0

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)

    def signal(self, customer: int) -> dict[str, Any]:
        seq = self._next
        self._next += 1
        return {
            "id": f"{self.run}-{seq}",
            "type": _TYPES[seq % len(_TYPES)],
            "occurred_at": (_START + timedelta(milliseconds=seq)).isoformat(),
            "identities": [{"type": "email", "value": f"user{customer}@example.org"}],
            "properties": {
                "page": f"/products/{seq % 500}",
                "session": f"s{seq // 20}",
                "value": seq % 100,
            },
        }

    def first_pass(self) -> list[dict[str, Any]]:
        """One signal for each customer: every one of them is new."""
        return [self.signal(customer) for customer in range(self.customers)]

    def known(self, count: int) -> list[dict[str, Any]]:
        """Signals about customers picked at random among those of the first pass."""
        return [self.signal(self._random.randrange(self.customers)) for _ in range(count)]


def batches(items: Sequence[T], size: int) -> list[Sequence[T]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def http_bodies(signals: Sequence[dict[str, Any]], size: int) -> list[tuple[int, bytes]]:
    """`POST /v1/events` bodies of `size` signals each, with their signal counts."""
    return [(len(chunk), _encode({"signals": chunk})) for chunk in batches(signals, size)]


def nats_messages(signals: Iterable[dict[str, Any]]) -> list[tuple[str, bytes]]:
    """One (Nats-Msg-Id, JSON) message per signal."""
    return [(s["id"], _encode(s)) for s in signals]


def nats_batch_messages(signals: Sequence[dict[str, Any]], size: int) -> list[tuple[str, bytes]]:
    """One (Nats-Msg-Id, `{"signals": [...]}`) message per `size` signals."""
    return [
        (f"batch:{chunk[0]['id']}", _encode({"signals": chunk})) for chunk in batches(signals, size)
    ]


def raw_rows(signals: Iterable[dict[str, Any]]) -> list[RawRow]:
    """The columns of `bench_signals_raw`: id, type, occurred_at, identities and properties."""
    return [
        (
            s["id"],
            s["type"],
            datetime.fromisoformat(s["occurred_at"]),
            _encode(s["identities"]).decode(),
            _encode(s["properties"]).decode(),
        )
        for s in signals
    ]
