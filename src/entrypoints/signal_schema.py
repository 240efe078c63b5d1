"""Signals as they come over HTTP and NATS: the limits of the wire, then the domain's document.

What a signal is made of, and how it is checked and read, is the domain's
(`domain.signals.document`); the edge adds what no document may hold, its size and its text.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from domain.customer.signal_effects import CUSTOMER_SIGNALS
from domain.signals.aggregate import SignalReport
from domain.signals.document import InvalidSignal, SignalIn, signal_id_of
from entrypoints.text_checks import raw_fault
from ports.intake import ReceivedSignal

if TYPE_CHECKING:
    import msgspec

    from domain.signals.document import SignalReader

__all__ = ["MAX_BATCH", "MAX_SIGNAL_BYTES", "SignalMapper"]

MAX_BATCH = 1000
MAX_SIGNAL_BYTES = 64 * 1024
"""One signal's encoded JSON, at most: a larger one is refused, the rest of its batch stored."""


class SignalMapper:
    """Refuses what the wire must not carry, then reads signals with the domain's reader."""

    def __init__(self, reader: SignalReader) -> None:
        self.reader = reader

    def from_raw(self, index: int, raw: msgspec.Raw | bytes) -> SignalReport | InvalidSignal:
        signal = self.decode(index, raw)
        if isinstance(signal, InvalidSignal):
            return signal
        return self.reader.report(index, signal)

    def decode(self, index: int, raw: msgspec.Raw | bytes) -> SignalIn | InvalidSignal:
        if len(raw) > MAX_SIGNAL_BYTES:
            reason = f"is {len(raw):,} bytes of JSON; a signal may have {MAX_SIGNAL_BYTES:,}"
            return InvalidSignal(index, "$", reason, signal_id_of(raw))
        # Before anything stores it or walks it: text PostgreSQL refuses, and deep nesting.
        fault = raw_fault(raw)
        if fault is not None:
            return InvalidSignal(index, fault.path, fault.reason, signal_id_of(raw))
        return self.reader.decode(index, raw)

    def check(self, index: int, raw: msgspec.Raw | bytes) -> SignalIn | InvalidSignal:
        """The signal if it is valid, as `from_raw` would take it, without building the report."""
        signal = self.decode(index, raw)
        if isinstance(signal, InvalidSignal):
            return signal
        return self.reader.check(index, signal) or signal

    def received(self, index: int, signal: SignalIn, payload: bytes) -> ReceivedSignal:
        """The signal for intake; one that acts on its customer carries its report along."""
        at_once = None
        if signal.type in CUSTOMER_SIGNALS:
            report = self.reader.report(index, signal)
            at_once = report if isinstance(report, SignalReport) else None
        return ReceivedSignal(signal.id, payload, at_once)
