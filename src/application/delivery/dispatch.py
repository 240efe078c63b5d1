"""Sends queued messages through the channel's providers in failover order, and records how."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

import tenacity

from application.conflicts import retry_on_conflict
from application.messages.list_unsubscribe import list_unsubscribe_headers
from domain.message.aggregate import Attempt, Message, MessageStatus
from domain.shared.text import without_contacts
from ports.providers import Availability, Guarded, OutboundMessage, ProviderError
from ports.unit_of_work import ConcurrencyConflict

if TYPE_CHECKING:
    from collections.abc import Collection, Sequence
    from datetime import datetime
    from decimal import Decimal
    from uuid import UUID

    from domain.policy.vocabulary import Channel
    from ports.clock import Clock
    from ports.providers import ProviderDirectory, SendReceipt
    from ports.unit_of_work import UnitOfWork, UnitsOfWork
    from ports.unsubscribe import UnsubscribeTokens

__all__ = ["Claimed", "DispatchMessages", "Round"]


@dataclass(frozen=True, slots=True)
class Claimed:
    """A message leased to this dispatcher, as committed when it was leased."""

    message: Message
    rounds: int  # earlier dispatch rounds that ended in a retry
    trace_context: str | None = None  # the queuing span's `traceparent`, opaque (ADR 0020)


@dataclass(frozen=True, slots=True)
class Round:
    """How one dispatch round ended for one message: accepted, retried later, or failed."""

    message_id: UUID
    attempts: tuple[Attempt, ...]
    receipt: SendReceipt | None = None
    provider: str | None = None
    cost: tuple[Decimal, str] | None = None
    retry_in: float | None = None
    retry_at: datetime | None = None
    failure: str | None = None
    withdrawn: bool = False  # held back unsent: replaced by its fallback, or expired

    def apply(self, uow: UnitOfWork, message: Message, now: datetime) -> None:
        """Writes the round on the message and ends its outbox entry's lease, in `uow`;
        applied again on a fresh copy after a conflict. The entry leaves the outbox once the
        message is settled (accepted, failed or withdrawn), and comes back later otherwise."""
        self._apply(message, now)
        uow.repository(Message).add(message)
        if message.settled:
            uow.outbox.sent_off(message.id)
            if message.status is MessageStatus.EXPIRED:
                # Its fallback would ask the same expired request again: nothing to send.
                uow.outbox.forget_fallback(message.id)
        else:
            uow.outbox.retry_later(message.id, self.retry_in or 0.0, now)

    def _apply(self, message: Message, now: datetime) -> None:
        if self.receipt is not None and self.provider is not None:
            cost, currency = self.cost if self.cost else (None, None)
            message.accepted(
                self.attempts,
                self.provider,
                self.receipt.provider_message_id,
                self.receipt.status,
                cost,
                currency,
            )
        elif self.failure is not None:
            message.failed(self.attempts, self.failure, self.attempts[-1].at)
        else:
            message.attempted(self.attempts, self.retry_at)
            # Replaced by its fallback while this round was out (a copy read after a conflict
            # knows), or expiring before its next try: it never goes.
            message.withdraw(now, before=self.retry_at)

    @property
    def outcome(self) -> str:
        if self.receipt is not None:
            return "accepted"
        if self.withdrawn:
            return "withdrawn"
        return "failed" if self.failure is not None else "retry"


class DispatchMessages:
    """One round per claimed message: each provider of its channel in turn until one accepts.

    Every call carries the message's idempotency key, so a round repeated after a crash
    reaches the provider's effect once. Retryable failures come back later with exponential
    backoff and jitter, up to `max_rounds`; then the failure is recorded.
    """

    def __init__(
        self,
        uows: UnitsOfWork,
        providers: ProviderDirectory,
        clock: Clock,
        *,
        unsubscribe: UnsubscribeTokens | None = None,
        public_url: str = "",
        max_rounds: int = 8,
        lease_seconds: float = 30.0,
        backoff: tenacity.wait.wait_base | None = None,
    ) -> None:
        self.uows = uows
        self.providers = providers
        self.clock = clock
        self.unsubscribe = unsubscribe
        self.public_url = public_url
        self.max_rounds = max_rounds
        self.lease_seconds = lease_seconds
        self.backoff = backoff or tenacity.wait_exponential_jitter(initial=1, max=300, jitter=1)

    async def claim(self, channel: Channel, limit: int) -> list[Claimed]:
        """Leases due messages of one channel in a short commit of its own: providers are
        called outside any, and each round is recorded in another (`settle`)."""
        async with self.uows() as uow:
            leased = await uow.outbox.claim(channel, limit, self.lease_seconds, self.clock.now())
            if not leased:
                return []
            messages = await uow.repository(Message).get([entry.message_id for entry in leased])
        return [
            Claimed(messages[entry.message_id], entry.rounds, entry.trace_context)
            for entry in leased
            if entry.message_id in messages
        ]

    async def renew(self, message_ids: Collection[UUID]) -> None:
        """Extends the leases of messages still being sent, so no other dispatcher takes them."""
        if message_ids:
            async with self.uows() as uow:
                await uow.outbox.renew(message_ids, self.lease_seconds, self.clock.now())

    def availability(self, channel: Channel) -> Availability:
        """How many sends the channel's providers would take now, all of them together.

        None (as many as come) while any provider would take every send; 0 while each one
        would refuse at once (its breaker open), with the wait until the first would try again.
        A channel without providers takes everything: its rounds record why they failed.
        """
        sends = 0
        wait: float | None = None
        for provider in self.providers.for_channel(channel):
            if not isinstance(provider, Guarded):
                return Availability()
            now = provider.availability()
            if now.sends is None:
                return Availability()
            sends += now.sends
            if now.sends == 0:
                wait = now.wait if wait is None else min(wait, now.wait)
        if sends or wait is None:
            return Availability(sends or None)
        return Availability(0, wait)

    def outbound(self, message: Message) -> OutboundMessage:
        """The message as providers take it; the idempotency key is the message's id."""
        content = message.content
        headers = list_unsubscribe_headers(
            self.unsubscribe, self.public_url, message.customer_id, message.channel, message.purpose
        )
        return OutboundMessage(
            message_id=message.id,
            idempotency_key=str(message.id),
            channel=message.channel,
            to=message.recipient,
            body=content.body,
            subject=content.subject,
            html=content.html,
            template=content.whatsapp_template,
            template_language=content.whatsapp_language,
            template_parameters=content.whatsapp_parameters,
            title=content.title,
            headers=headers or {},
            data={"message_id": str(message.id)},
        )

    async def send(self, claimed: Claimed) -> Round:
        """Tries the channel's providers in order; never raises for a provider's failure.

        A message its fallback replaced, or past its expiry, goes to no provider: the copy was
        read in the same transaction as the lease, and a fallback withdraws only an entry no
        dispatcher holds, so the two cannot both let it go."""
        message = claimed.message
        if message.must_not_go(self.clock.now()):
            return Round(message.id, (), withdrawn=True)
        outbound = self.outbound(message)
        attempts: list[Attempt] = []
        retryable = False
        wait_at_least = 0.0
        for provider in self.providers.for_channel(message.channel):
            at = self.clock.now()
            started = time.perf_counter()
            try:
                receipt = await provider.send(outbound)
            except ProviderError as error:
                latency = (time.perf_counter() - started) * 1000
                attempts.append(
                    Attempt(
                        provider.name,
                        at,
                        latency,
                        False,
                        without_contacts(error.reason),  # an SMTP refusal echoes the address
                        error.retryable,
                    )
                )
                retryable = retryable or error.retryable
                wait_at_least = max(wait_at_least, error.retry_after or 0.0)
                continue
            latency = (time.perf_counter() - started) * 1000
            attempts.append(Attempt(provider.name, at, latency, True, receipt.provider_message_id))
            cost = (
                (receipt.cost, receipt.currency or "USD")
                if receipt.cost is not None
                else self.providers.price(provider.name, message.recipient)
            )
            return Round(message.id, tuple(attempts), receipt, provider.name, cost)
        now = self.clock.now()
        if not attempts:
            reason = f"no provider is configured for {message.channel.value}"
            attempts.append(Attempt("chorus", now, 0.0, False, reason, True))
            retryable = True
        rounds = claimed.rounds + 1
        if retryable and rounds < self.max_rounds:
            state = tenacity.RetryCallState(None, None, (), {})  # type: ignore[arg-type]
            state.attempt_number = rounds
            delay = max(self.backoff(state), wait_at_least)
            return Round(
                message.id,
                tuple(attempts),
                retry_in=delay,
                retry_at=now + timedelta(seconds=delay),
            )
        why = "retries exhausted" if retryable else "refused by every provider"
        return Round(message.id, tuple(attempts), failure=f"{why}: {attempts[-1].answer}")

    async def settle(self, rounds: Sequence[tuple[Message, Round]]) -> None:
        """Records rounds together; if a message moved on meanwhile, each is recorded alone."""
        if not rounds:
            return
        try:
            async with self.uows() as uow:
                now = self.clock.now()
                for message, r in rounds:
                    r.apply(uow, message, now)
        except ConcurrencyConflict:
            for message, r in rounds:
                await self._settle_alone(message.id, r)

    async def _settle_alone(self, message_id: UUID, r: Round) -> None:
        async def attempt() -> None:
            async with self.uows() as uow:
                fresh = (await uow.repository(Message).get([message_id])).get(message_id)
                if fresh is not None:
                    r.apply(uow, fresh, self.clock.now())

        await retry_on_conflict(attempt)
