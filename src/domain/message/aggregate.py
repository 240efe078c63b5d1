"""The Message aggregate: one allowed send, from its decision to its last status."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime  # events carry these types; msgspec resolves them at run time
from decimal import Decimal
from enum import StrEnum
from functools import cache
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event
from eventsourcing.utils import get_topic

from domain.message.content import Content
from domain.policy.vocabulary import Channel, Purpose
from domain.shared.personal import PersonalFields
from domain.shared.topics import StoredAs

__all__ = ["Attempt", "Message", "MessageStatus", "StatusChange"]


class MessageStatus(StrEnum):
    """Where a message is; providers' own words are mapped to these."""

    QUEUED = "queued"
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    FAILED = "failed"
    BOUNCED = "bounced"
    COMPLAINED = "complained"
    # Withdrawn before any provider took it, so it never leaves: replaced by its channel
    # fallback, or past its expiry. Chorus records these itself; no provider reports them.
    SUPERSEDED = "superseded"
    EXPIRED = "expired"


_PROGRESS = {
    MessageStatus.QUEUED: 0,
    MessageStatus.SENT: 1,
    MessageStatus.DELIVERED: 2,
    MessageStatus.READ: 3,
}


@dataclass(frozen=True, slots=True)
class Attempt:
    """One call to one provider: how long it took and what it answered."""

    provider: str
    at: datetime
    latency_ms: float
    accepted: bool
    answer: str  # the provider's message id, or the reason it refused
    retryable: bool = False


@dataclass(frozen=True, slots=True)
class StatusChange:
    """A status as a provider reported it, with the cost if it said."""

    status: MessageStatus
    at: datetime  # when Chorus learned it, on its own clock
    provider: str
    source: str  # "receipt" (the send's answer), "webhook", "dispatch" or "fallback"
    reason: str | None = None
    reported_at: datetime | None = None  # the provider's own time for it, if it gave one


_WITHDRAWN = frozenset({MessageStatus.SUPERSEDED, MessageStatus.EXPIRED})
_new = object.__new__


@cache
def _topic_of(cls: type) -> str:
    """eventsourcing's name of an aggregate class, as a created event carries it in memory."""
    return get_topic(cls)


class Message(Aggregate):
    """An allowed message. Its first event ties it to the decision that allowed it."""

    stored_as = StoredAs("domain.message.aggregate:Message")
    # Where it went and what it said: its customer's (ADR 0019); and what a provider said of
    # it, free text that may name the recipient (a bounce's `550 5.1.1 <ana@...>`).
    personal = PersonalFields(
        {
            "Queued": (
                "recipient",
                "content.subject",
                "content.body",
                "content.html",
                "content.title",
                "content.whatsapp_parameters[]",
            ),
            "StatusReported": ("reason",),
        }
    )

    class Queued(Aggregate.Created):
        """The message was allowed and put in the outbox; since version 2 it says until when
        it may still go (`expires_at`, the send request's)."""

        class_version = 2
        customer_id: UUID
        decision_id: UUID
        channel: Channel
        purpose: Purpose
        team: str
        recipient: str
        content: Content
        campaign: str | None
        template: str | None
        template_version: int | None
        correlation_id: str | None
        fallback_channels: tuple[Channel, ...]
        fallback_due: datetime | None
        expires_at: datetime | None

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["expires_at"] = None

    @event(Queued)
    def __init__(
        self,
        id: UUID,
        timestamp: datetime,
        customer_id: UUID,
        decision_id: UUID,
        channel: Channel,
        purpose: Purpose,
        team: str,
        recipient: str,
        content: Content,
        campaign: str | None,
        template: str | None,
        template_version: int | None,
        correlation_id: str | None,
        fallback_channels: tuple[Channel, ...] = (),
        fallback_due: datetime | None = None,
        expires_at: datetime | None = None,
    ) -> None:
        self._queued(
            timestamp,
            customer_id,
            decision_id,
            channel,
            purpose,
            team,
            recipient,
            content,
            campaign,
            template,
            template_version,
            correlation_id,
            fallback_channels,
            fallback_due,
            expires_at,
        )

    @classmethod
    def queue(
        cls,
        id: UUID,
        timestamp: datetime,
        customer_id: UUID,
        decision_id: UUID,
        channel: Channel,
        purpose: Purpose,
        team: str,
        recipient: str,
        content: Content,
        campaign: str | None,
        template: str | None,
        template_version: int | None,
        correlation_id: str | None,
        fallback_channels: tuple[Channel, ...] = (),
        fallback_due: datetime | None = None,
        expires_at: datetime | None = None,
    ) -> Message:
        """The message as `Message(...)` makes it (the same `Queued` event, the same state),
        built in place rather than through eventsourcing's decorator, whose argument matching
        and frozen dataclass's setattr per field cost more than the rest of queueing it: a
        broadcast queues one per customer. `__init__` stays, and rebuilds it from its event."""
        message: Message = _new(cls)
        message.__base_init__(id, 1, timestamp)
        message._queued(
            timestamp,
            customer_id,
            decision_id,
            channel,
            purpose,
            team,
            recipient,
            content,
            campaign,
            template,
            template_version,
            correlation_id,
            fallback_channels,
            fallback_due,
            expires_at,
        )
        queued = _new(cls.Queued)
        queued.__dict__.update(
            originator_topic=_topic_of(cls),
            originator_id=id,
            originator_version=1,
            timestamp=timestamp,
            customer_id=customer_id,
            decision_id=decision_id,
            channel=channel,
            purpose=purpose,
            team=team,
            recipient=recipient,
            content=content,
            campaign=campaign,
            template=template,
            template_version=template_version,
            correlation_id=correlation_id,
            fallback_channels=fallback_channels,
            fallback_due=fallback_due,
            expires_at=expires_at,
        )
        message.pending_events.append(queued)
        return message

    def _queued(
        self,
        timestamp: datetime,
        customer_id: UUID,
        decision_id: UUID,
        channel: Channel,
        purpose: Purpose,
        team: str,
        recipient: str,
        content: Content,
        campaign: str | None,
        template: str | None,
        template_version: int | None,
        correlation_id: str | None,
        fallback_channels: tuple[Channel, ...],
        fallback_due: datetime | None,
        expires_at: datetime | None,
    ) -> None:
        self.customer_id = customer_id
        self.decision_id = decision_id
        self.channel = channel
        self.purpose = purpose
        self.team = team
        self.recipient = recipient
        self.content = content
        self.campaign = campaign
        self.template = template
        self.template_version = template_version
        self.correlation_id = correlation_id
        self.fallback_channels = fallback_channels
        self.fallback_due = fallback_due
        self.expires_at = expires_at
        self.fell_back_to: UUID | None = None
        # Another message takes over (its fallback, or a journey's next send): it must not go
        # if it has not yet.
        self.replaced = False
        self.replaced_because: str | None = None
        self.queued_at = timestamp
        self.status = MessageStatus.QUEUED
        self.attempts: list[Attempt] = []
        self.statuses: list[StatusChange] = []
        self.provider: str | None = None
        self.provider_message_id: str | None = None
        self.cost: Decimal | None = None
        self.currency: str | None = None
        self.failure: str | None = None

    @property
    def subject_id(self) -> UUID:
        """The customer the message is for."""
        return self.customer_id

    @property
    def settled(self) -> bool:
        """Accepted by a provider, failed for good, or withdrawn: dispatch has nothing more
        to do."""
        return (
            self.provider_message_id is not None
            or self.failure is not None
            or self.status in _WITHDRAWN
        )

    def must_not_go(self, now: datetime) -> bool:
        """Not taken by a provider yet, and replaced by its fallback or past its expiry: a
        dispatcher that holds it withdraws it (`withdraw`) instead of sending it."""
        return not self.settled and (self.replaced or self.expired_by(now))

    def expired_by(self, moment: datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= moment

    # commands

    def attempted(self, attempts: tuple[Attempt, ...], retry_at: datetime | None) -> None:
        """Records calls that did not get the message accepted, and when it is tried again."""
        if attempts:
            self._attempts_failed(attempts[-1].at, attempts, retry_at)

    def accepted(
        self,
        attempts: tuple[Attempt, ...],
        provider: str,
        provider_message_id: str,
        status: MessageStatus,
        cost: Decimal | None,
        currency: str | None,
    ) -> None:
        """A provider took the message; earlier attempts in this round failed over to it."""
        if self.provider_message_id is not None:
            return
        self._accepted(
            attempts[-1].at, attempts, provider, provider_message_id, status, cost, currency
        )

    def failed(self, attempts: tuple[Attempt, ...], reason: str, at: datetime) -> None:
        """No provider took it and no retry is left: a recorded failure, never a silent loss."""
        if self.settled:
            return
        self._failed(at, attempts, reason)

    def report(
        self,
        status: MessageStatus,
        provider: str,
        at: datetime,
        reason: str | None = None,
        cost: Decimal | None = None,
        currency: str | None = None,
        reported_at: datetime | None = None,
    ) -> bool:
        """A provider's webhook, learned at `at` (Chorus's clock; `reported_at` is the
        provider's own): recorded once per status, whatever order they arrive in."""
        if any(s.status is status and s.source == "webhook" for s in self.statuses):
            return False
        self._status_reported(at, status, provider, reason, cost, currency, reported_at)
        return True

    @property
    def reached_customer(self) -> bool:
        return self.status in (MessageStatus.DELIVERED, MessageStatus.READ)

    def fall_back(
        self, fallback_message_id: UUID, reason: str, at: datetime, *, replaced: bool = False
    ) -> None:
        """Not delivered in time, or failed: the customer is tried on another channel.

        `replaced`: the fallback message goes (now or deferred) in this one's stead, so this
        one, if no provider has taken it yet, must never go (see `withdraw`)."""
        if self.fell_back_to is None:
            self._fell_back(at, fallback_message_id, reason, replaced and not self.settled)

    def give_up(self, reason: str, at: datetime) -> bool:
        """Whoever asked for it no longer wants it sent (a journey moved on to another send
        after waiting for its delivery): if no provider has it yet, it must never go (see
        `withdraw`). Whether it was still unsent."""
        if self.settled:
            return False
        if not self.replaced:
            self._given_up(at, reason)
        return True

    def withdraw(self, at: datetime, before: datetime | None = None) -> bool:
        """Ends a message no provider has taken: superseded if its fallback replaced it, expired
        if its expiry is past at `at` (or will be by `before`, its next try). Whether it was."""
        if self.settled:
            return False
        if self.replaced:
            if self.fell_back_to is not None:
                why = f"superseded by its fallback, message {self.fell_back_to}"
            else:
                why = f"withdrawn: {self.replaced_because or 'replaced'}"
            self._superseded(at, self.fell_back_to, f"{why}, before a provider took it")
            return True
        if self.expires_at is not None and self.expired_by(before or at):
            self._expired(
                at, f"expires at {self.expires_at.isoformat()}, before a provider took it"
            )
            return True
        return False

    # events

    class FellBack(Aggregate.Event):
        """Since version 2 it says whether the fallback message replaces this one."""

        class_version = 2
        fallback_message_id: UUID
        reason: str
        replaced: bool

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["replaced"] = False

    @event(FellBack)
    def _fell_back(
        self, timestamp: datetime, fallback_message_id: UUID, reason: str, replaced: bool
    ) -> None:
        self.fell_back_to = fallback_message_id
        self.replaced = replaced

    @event("GivenUp")
    def _given_up(self, timestamp: datetime, reason: str) -> None:
        self.replaced = True
        self.replaced_because = reason

    @event("Superseded")
    def _superseded(self, timestamp: datetime, by: UUID | None, reason: str) -> None:
        self.status = MessageStatus.SUPERSEDED
        self.statuses.append(
            StatusChange(MessageStatus.SUPERSEDED, timestamp, "chorus", "fallback", reason)
        )

    @event("Expired")
    def _expired(self, timestamp: datetime, reason: str) -> None:
        self.status = MessageStatus.EXPIRED
        self.statuses.append(
            StatusChange(MessageStatus.EXPIRED, timestamp, "chorus", "dispatch", reason)
        )

    @event("AttemptsFailed")
    def _attempts_failed(
        self, timestamp: datetime, attempts: tuple[Attempt, ...], retry_at: datetime | None
    ) -> None:
        self.attempts.extend(attempts)

    @event("Accepted")
    def _accepted(
        self,
        timestamp: datetime,
        attempts: tuple[Attempt, ...],
        provider: str,
        provider_message_id: str,
        status: MessageStatus,
        cost: Decimal | None,
        currency: str | None,
    ) -> None:
        self.attempts.extend(attempts)
        self.provider = provider
        self.provider_message_id = provider_message_id
        if cost is not None:
            self.cost, self.currency = cost, currency
        self.statuses.append(StatusChange(status, timestamp, provider, "receipt"))
        self._advance(status)

    @event("DeliveryFailed")
    def _failed(self, timestamp: datetime, attempts: tuple[Attempt, ...], reason: str) -> None:
        self.attempts.extend(attempts)
        self.failure = reason
        self.status = MessageStatus.FAILED
        self.statuses.append(StatusChange(MessageStatus.FAILED, timestamp, "chorus", "dispatch"))

    class StatusReported(Aggregate.Event):
        """Its timestamp is when Chorus learned the status; since version 2 it keeps the time
        the provider gave for it (`reported_at`), which may be on another clock."""

        class_version = 2
        status: MessageStatus
        provider: str
        reason: str | None
        cost: Decimal | None
        currency: str | None
        reported_at: datetime | None

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["reported_at"] = None

    @event(StatusReported)
    def _status_reported(
        self,
        timestamp: datetime,
        status: MessageStatus,
        provider: str,
        reason: str | None,
        cost: Decimal | None,
        currency: str | None,
        reported_at: datetime | None,
    ) -> None:
        self.statuses.append(
            StatusChange(status, timestamp, provider, "webhook", reason, reported_at)
        )
        if cost is not None:
            self.cost, self.currency = cost, currency
        self._advance(status)

    def _advance(self, status: MessageStatus) -> None:
        """Progress only moves forward (a late `sent` after `delivered` changes nothing);
        a failure, bounce or complaint always shows, and so does anything a provider says of a
        message Chorus withdrew (a dispatcher whose lease ran out had handed it over after
        all: what the provider did is what the customer got)."""
        current = _PROGRESS.get(self.status)
        new = _PROGRESS.get(status)
        if new is None or self.status in _WITHDRAWN or (current is not None and new > current):
            self.status = status
