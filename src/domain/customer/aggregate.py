"""The Customer aggregate: identities, profile, consents and every send decision about one person."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.assistant.intents import canonical_intent
from domain.customer.contact import ConsentRecord, customer_facts, forget_expired
from domain.customer.held_edit import HELD_EDIT_PERSONAL, HeldEdit
from domain.customer.identities import Identity, IdentityClaim, Verification, strongest_claims
from domain.customer.keywords import consent_from_keyword
from domain.customer.profile import (
    PERSONAL_PROFILE_FIELDS,
    AttributeValue,
    Profile,
    check_attributes,
)
from domain.policy.decision import (
    ConsentState,
    ContactRecord,
    CustomerFacts,
    Decision,
    Effect,
    FiredRule,
    Outcome,
    SendRequest,
)
from domain.policy.engine import decide
from domain.policy.rules import RuleSet
from domain.policy.vocabulary import CHANNEL_IDENTITIES, Channel, Purpose
from domain.shared.errors import DomainError
from domain.shared.personal import PersonalFields
from domain.shared.topics import StoredAs

__all__ = [
    "PROFILE_EVENTS",
    "ClassifiedMessage",
    "Customer",
    "CustomerWasErased",
    "CustomerWasMerged",
    "LinkedIdentity",
]


@dataclass(frozen=True, slots=True)
class ClassifiedMessage:
    """One inbound message as the classifier read it: `intent` is its key (`unknown` with
    `unknown_reason` when none could be told), `urgency` a name (`low` .. `critical`)."""

    message_id: UUID
    channel: Channel
    received_at: datetime
    intent: str
    confidence: float
    sentiment: str
    score: float
    urgency: str
    unknown_reason: str | None = None


class CustomerWasMerged(DomainError):
    """The customer was merged into another; commands go to the survivor."""

    def __init__(self, customer_id: UUID, survivor_id: UUID) -> None:
        super().__init__(f"customer {customer_id} was merged into {survivor_id}")
        self.customer_id = customer_id
        self.survivor_id = survivor_id


class CustomerWasErased(DomainError):
    """The customer was erased: nothing more is recorded about them."""

    def __init__(self, customer_id: UUID) -> None:
        super().__init__(f"customer {customer_id} was erased")
        self.customer_id = customer_id


LinkedIdentity = IdentityClaim
"""An identity as the customer holds it, with its verification level."""


class Customer(Aggregate):
    """One person. Identities, once linked, resolve here until a merge moves them on."""

    stored_as = StoredAs("domain.customer.aggregate:Customer")
    # Names and custom attributes identify a person; time zone, locale and country are kept,
    # since the rules decide by them and alone they point at no one (ADR 0019).
    personal = PersonalFields(
        {
            "Registered": ("identities[].identity.value",),
            "IdentityLinked": ("identity.identity.value",),
            "ProfileUpdated": ("profile.first_name", "profile.last_name", "attributes.*"),
            "Absorbed": (
                "identities[].identity.value",
                "profile.first_name",
                "profile.last_name",
                "attributes.*",
            ),
            "ApprovalSettled": HELD_EDIT_PERSONAL,
            # Free text: a provider's bounce notice, an operator's note; the channel stays.
            "SuppressionAdded": ("reason",),
            # What the classifier inferred from the customer's own words is about them too.
            "MessageClassified": ("intent", "sentiment", "score"),
        }
    )

    @event("Registered")
    def __init__(
        self, id: UUID, timestamp: datetime, identities: tuple[LinkedIdentity, ...]
    ) -> None:
        self.identities: dict[Identity, Verification] = {}
        for claim in identities:
            self.identities[claim.identity] = claim.verification
        self.profile = Profile()
        self.attributes: dict[str, AttributeValue] = {}
        self.merged_into: UUID | None = None
        self.absorbed: tuple[UUID, ...] = ()
        self.consents: dict[tuple[Channel, Purpose], ConsentState] = {}
        self.opted_out: dict[Channel, ConsentState] = {}
        self.suppressed: dict[Channel | None, str] = {}
        self.last_inbound: dict[Channel, datetime] = {}
        self.ledger: deque[ContactRecord] = deque()
        self.decisions: dict[UUID, UUID] = {}  # message id -> its latest decision id
        self.erased_at: datetime | None = None
        self.erased_ids: tuple[UUID, ...] = ()

    @classmethod
    def register(
        cls, customer_id: UUID, at: datetime, claims: tuple[IdentityClaim, ...]
    ) -> Customer:
        return cls(id=customer_id, timestamp=at, identities=strongest_claims(claims))

    @property
    def subject_id(self) -> UUID:
        """A customer's events are about the customer."""
        return self.id

    # commands

    def link(self, claim: IdentityClaim, at: datetime) -> bool:
        """Links an identity, or raises its verification; False when nothing changed."""
        self._refuse_if_merged()
        known = self.identities.get(claim.identity)
        if known is not None and known.at_least(claim.verification):
            return False
        self._identity_linked(timestamp=at, identity=claim)
        return True

    def update_profile(
        self, at: datetime, profile: dict[str, Any], attributes: dict[str, Any]
    ) -> bool:
        """Changes profile fields and custom attributes; None removes an attribute."""
        self._refuse_if_merged()
        self.profile.merged_with(profile)  # validates before anything is recorded
        changed_fields = self.profile.changes_to(profile)
        changed_attributes = {
            name: value
            for name, value in check_attributes(attributes).items()
            if self.attributes.get(name, _MISSING) != value
            and not (value is None and name not in self.attributes)
        }
        if not changed_fields and not changed_attributes:
            return False
        self._profile_updated(timestamp=at, profile=changed_fields, attributes=changed_attributes)
        return True

    def absorb(self, other: Customer, at: datetime, reason: str) -> None:
        """Takes over another customer's identities, profile gaps and history."""
        self._refuse_if_merged()
        other._refuse_if_merged()
        if other.id == self.id:
            raise DomainError("a customer cannot absorb itself")
        identities = tuple(
            IdentityClaim(identity, verification)
            for identity, verification in sorted(other.identities.items())
        )
        gaps = {
            name: value
            for name, value in other.profile.as_dict().items()
            if value is not None and getattr(self.profile, name) is None
        }
        attributes = {k: v for k, v in other.attributes.items() if k not in self.attributes}
        self._absorbed(
            timestamp=at,
            merged_id=other.id,
            identities=identities,
            profile=gaps,
            attributes=attributes,
            reason=reason,
        )
        if other.consents or other.opted_out:
            self._consents_inherited(
                timestamp=at,
                merged_id=other.id,
                consents=tuple((c, p, s) for (c, p), s in sorted(other.consents.items())),
                opted_out=tuple(sorted(other.opted_out.items())),
            )
        other._merged_into(timestamp=at, survivor_id=self.id, reason=reason)

    def change_consent(self, change: ConsentRecord, at: datetime) -> bool:
        """Records a grant or withdrawal with its source; purpose None is the whole channel."""
        self._refuse_if_merged()
        if change.purpose is None:
            if change.granted == (change.channel not in self.opted_out):
                return False
        else:
            known = self.consents.get((change.channel, change.purpose))
            if known is not None and known.granted == change.granted:
                return False
        self._consent_changed(
            timestamp=at,
            channel=change.channel,
            purpose=change.purpose,
            granted=change.granted,
            source=change.source,
        )
        return True

    def suppress(self, channel: Channel | None, reason: str, at: datetime) -> bool:
        """Puts a channel (None: every channel) on the suppression list: bounces, complaints, manual."""
        self._refuse_if_merged()
        if self.suppressed.get(channel) == reason:
            return False
        self._suppression_added(timestamp=at, channel=channel, reason=reason)
        return True

    def lift_suppression(self, channel: Channel | None, source: str, at: datetime) -> bool:
        self._refuse_if_merged()
        if channel not in self.suppressed:
            return False
        self._suppression_lifted(timestamp=at, channel=channel, source=source)
        return True

    def note_inbound(self, channel: Channel, received_at: datetime, at: datetime) -> bool:
        """The customer wrote on a channel: it opens that channel's service window."""
        self._refuse_if_merged()
        known = self.last_inbound.get(channel)
        if known is not None and known >= received_at:
            return False
        self._inbound_received(timestamp=at, channel=channel, received_at=received_at)
        return True

    def receive_inbound(
        self, channel: Channel, text: str, received_at: datetime, at: datetime
    ) -> ConsentRecord | None:
        """A message from the customer: opens the service window; STOP or START apply at once."""
        self.note_inbound(channel, received_at, at)
        change = consent_from_keyword(channel, text)
        if change is not None:
            self.change_consent(change, at)
        return change

    def facts(self) -> CustomerFacts:
        """What the rules may know about this customer."""
        return customer_facts(
            self.identities,
            self.profile.time_zone,
            self.consents,
            self.opted_out,
            self.suppressed,
            self.last_inbound,
            self.attributes,
        )

    def address_for(self, channel: Channel) -> str | None:
        """Where a message on this channel goes: the best-verified identity of the best type."""
        for kind in CHANNEL_IDENTITIES.get(channel, ()):
            found = [(level, i.value) for i, level in self.identities.items() if i.type == kind]
            if found:
                return max(found, key=lambda pair: pair[0].rank)[1]
        return None

    def decide_message(
        self,
        message_id: UUID,
        decision_id: UUID,
        request: SendRequest,
        rules: RuleSet,
        at: datetime,
        origin: str,
    ) -> Decision:
        """Decides a send request against the rules and records the decision with its reasons.

        An allowed message enters the contact ledger in the same event, so caps and dedup
        hold for whoever decides next on this customer.
        """
        self._refuse_if_merged()
        decision = decide(request, self.facts(), self.ledger, rules, at)
        self._record_decision(
            _RECORDED[decision.outcome],
            at,
            message_id,
            decision_id,
            origin,
            request,
            decision.outcome,
            decision.channel,
            decision.defer_until,
            decision.rule_set_version,
            decision.fired,
        )
        return decision

    def withdraw_deferred(
        self,
        message_id: UUID,
        decision_id: UUID,
        request: SendRequest,
        reason: str,
        rule_set_version: int,
        at: datetime,
        origin: str,
        rule_id: str = "withdrawn",
    ) -> Decision:
        """Suppresses a deferred or held message before it is decided again, because its sender
        no longer wants it or an operator did not approve it (`reason`): the decision that ends
        it, citing `rule_id` (`withdrawn`, or the approval rule that held it)."""
        self._refuse_if_merged()
        fired = (FiredRule(rule_id, Effect.SUPPRESSED, reason),)
        decision = Decision(Outcome.SUPPRESS, rule_set_version, None, None, fired)
        self._record_decision(
            Customer.MessageSuppressed,
            at,
            message_id,
            decision_id,
            origin,
            request,
            decision.outcome,
            None,
            None,
            rule_set_version,
            fired,
        )
        return decision

    def _record_decision(
        self,
        kind: type[Customer.MessageDecided],
        at: datetime,
        message_id: UUID,
        decision_id: UUID,
        origin: str,
        request: SendRequest,
        outcome: Outcome,
        channel: Channel | None,
        defer_until: datetime | None,
        rule_set_version: int,
        fired: tuple[FiredRule, ...],
    ) -> None:
        """Appends the decision's event and applies it, as `trigger_event` would: the same
        event, the same state change, the version moved on. Built in place rather than through
        the frozen dataclass's __init__ (a setattr per field) and eventsourcing's keyword
        handling, which cost as much as deciding: a broadcast decides one per customer."""
        event = _new(kind)
        version = self.version + 1
        event.__dict__.update(
            originator_id=self.id,
            originator_version=version,
            timestamp=at,
            message_id=message_id,
            decision_id=decision_id,
            origin=origin,
            request=request,
            outcome=outcome,
            channel=channel,
            defer_until=defer_until,
            rule_set_version=rule_set_version,
            fired=fired,
        )
        event.apply(self)
        self.version = version
        self.modified_on = at
        self.pending_events.append(event)

    def settle_approval(
        self,
        approval_id: UUID,
        message_id: UUID,
        verdict: str,
        by: str,
        note: str,
        at: datetime,
        edit: HeldEdit | None = None,
    ) -> None:
        """An operator (or the expiry, `by` the scheduler) settled a held message: `approved`,
        `edited` (with what the edit changed), `rejected` or `expired`. The decision that
        follows it is recorded next."""
        self._refuse_if_merged()
        self._approval_settled(
            timestamp=at,
            approval_id=approval_id,
            message_id=message_id,
            verdict=verdict,
            by=by,
            note=note,
            edit=edit,
        )

    def erase(self, at: datetime, by: str | None = None) -> bool:
        """Forgets the person: their keys go, so every personal value recorded about them (and
        about the customers merged into them) reads as erased; False when erased already.
        `by`: the key that asked, as the event records it."""
        if self.merged_into is not None:
            raise CustomerWasMerged(self.id, self.merged_into)
        if self.erased_at is not None:
            return False
        self._erased(timestamp=at, customer_ids=(self.id, *self.absorbed), by=by)
        return True

    def note_classified(self, message: ClassifiedMessage, at: datetime) -> None:
        """The classifier read one of the customer's messages: its intent, sentiment and
        urgency (never its text). Once per message: the conversation that receives the message
        records it in the same commit, and a message seen twice is received once."""
        self._refuse_if_merged()
        self._message_classified(
            timestamp=at,
            message_id=message.message_id,
            channel=message.channel,
            received_at=message.received_at,
            intent=canonical_intent(message.intent),
            confidence=message.confidence,
            sentiment=message.sentiment,
            score=message.score,
            urgency=message.urgency,
            unknown_reason=message.unknown_reason,
        )

    @property
    def is_merged(self) -> bool:
        return self.merged_into is not None

    def _refuse_if_merged(self) -> None:
        if self.merged_into is not None:
            raise CustomerWasMerged(self.id, self.merged_into)
        if self.erased_at is not None:
            raise CustomerWasErased(self.id)

    # events: each method body is the state change the event makes

    @event("IdentityLinked")
    def _identity_linked(self, timestamp: datetime, identity: LinkedIdentity) -> None:
        self.identities[identity.identity] = identity.verification

    @event("ProfileUpdated")
    def _profile_updated(
        self, timestamp: datetime, profile: dict[str, Any], attributes: dict[str, Any]
    ) -> None:
        self.profile = self.profile.merged_with(profile)
        for name, value in attributes.items():
            if value is None:
                self.attributes.pop(name, None)
            else:
                self.attributes[name] = value

    @event("Absorbed")
    def _absorbed(
        self,
        timestamp: datetime,
        merged_id: UUID,
        identities: tuple[LinkedIdentity, ...],
        profile: dict[str, Any],
        attributes: dict[str, Any],
        reason: str,
    ) -> None:
        for claim in identities:
            known = self.identities.get(claim.identity)
            if known is None or not known.at_least(claim.verification):
                self.identities[claim.identity] = claim.verification
        self.profile = self.profile.merged_with(profile)
        self.attributes.update(attributes)
        self.absorbed = (*self.absorbed, merged_id)

    @event("ConsentChanged")
    def _consent_changed(
        self,
        timestamp: datetime,
        channel: Channel,
        purpose: Purpose | None,
        granted: bool,
        source: str,
    ) -> None:
        state = ConsentState(granted, source, timestamp)
        if purpose is None:
            if granted:
                self.opted_out.pop(channel, None)
            else:
                self.opted_out[channel] = state
        else:
            self.consents[(channel, purpose)] = state

    @event("SuppressionAdded")
    def _suppression_added(self, timestamp: datetime, channel: Channel | None, reason: str) -> None:
        self.suppressed[channel] = reason

    @event("SuppressionLifted")
    def _suppression_lifted(
        self, timestamp: datetime, channel: Channel | None, source: str
    ) -> None:
        self.suppressed.pop(channel, None)

    @event("InboundReceived")
    def _inbound_received(
        self, timestamp: datetime, channel: Channel, received_at: datetime
    ) -> None:
        self.last_inbound[channel] = received_at

    @event("ConsentsInherited")
    def _consents_inherited(
        self,
        timestamp: datetime,
        merged_id: UUID,
        consents: tuple[tuple[Channel, Purpose, ConsentState], ...],
        opted_out: tuple[tuple[Channel, ConsentState], ...],
    ) -> None:
        for channel, purpose, state in consents:
            known = self.consents.get((channel, purpose))
            # A withdrawal always carries over; a grant only fills a gap.
            if known is None or (not state.granted and state.at >= known.at):
                self.consents[(channel, purpose)] = state
        for channel, state in opted_out:
            self.opted_out.setdefault(channel, state)

    class MessageDecided(Aggregate.Event):
        """A send request was decided; the outcome names the event that records it."""

        message_id: UUID
        decision_id: UUID
        origin: str
        request: SendRequest
        outcome: Outcome
        channel: Channel | None
        defer_until: datetime | None
        rule_set_version: int
        fired: tuple[FiredRule, ...]

        def apply(self, aggregate: Any) -> None:
            aggregate.decisions[self.message_id] = self.decision_id

    class MessageAllowed(MessageDecided):
        """Allowed: it enters the contact ledger, and delivery takes it from here."""

        def apply(self, aggregate: Any) -> None:
            super().apply(aggregate)
            if self.channel is None:
                return
            forget_expired(aggregate.ledger, self.timestamp)
            request = self.request
            aggregate.ledger.append(
                ContactRecord(
                    self.timestamp,
                    self.channel,
                    request.purpose,
                    request.team,
                    request.priority,
                    request.dedup_key,
                )
            )

    class MessageDeferred(MessageDecided):
        """Deferred until `defer_until`, when the scheduler decides it again."""

    class MessageSuppressed(MessageDecided):
        """Suppressed for good, with the rules that said so."""

    class MessageHeld(MessageDecided):
        """Held for an operator's approval until `defer_until`, citing the rule that held it."""

    class ApprovalSettled(Aggregate.Event):
        """A verdict on a held message; since version 2 with an edit's message as held and as
        approved (`edit`, sealed: its contents are the customer's), None for other verdicts
        and for those stored before."""

        class_version = 2
        approval_id: UUID
        message_id: UUID
        verdict: str
        by: str
        note: str
        edit: HeldEdit | None

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state.update(edit=None)

    @event(ApprovalSettled)
    def _approval_settled(
        self,
        timestamp: datetime,
        approval_id: UUID,
        message_id: UUID,
        verdict: str,
        by: str,
        note: str,
        edit: HeldEdit | None,
    ) -> None:
        pass

    class MessageClassified(Aggregate.Event):
        """A message classified; since version 2 its intent is the intent's key
        (`canonical_intent`): those stored before read `Refund_not_showing_up` and
        `reverted_card_payment?` as `refund_not_showing_up` and `reverted_card_payment`.

        Intent, sentiment and score are personal (sealed): once the customer is erased they
        read `[erased]`, the score too (a number until then). Those stored in clear before
        they were sealed read as stored, until `chorus erasure seal-existing` seals them."""

        class_version = 2
        message_id: UUID
        channel: Channel
        received_at: datetime
        intent: str
        confidence: float
        sentiment: str
        score: float | str
        urgency: str
        unknown_reason: str | None

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["intent"] = canonical_intent(state["intent"])

    @event(MessageClassified)
    def _message_classified(
        self,
        timestamp: datetime,
        message_id: UUID,
        channel: Channel,
        received_at: datetime,
        intent: str,
        confidence: float,
        sentiment: str,
        score: float | str,
        urgency: str,
        unknown_reason: str | None,
    ) -> None:
        pass

    @event("MergedInto")
    def _merged_into(self, timestamp: datetime, survivor_id: UUID, reason: str) -> None:
        self.merged_into = survivor_id
        self.identities = {}

    class Erased(Aggregate.Event):
        """The person was forgotten; since version 2 with who asked (`by`: the key; those
        stored before name no one)."""

        class_version = 2
        customer_ids: tuple[UUID, ...]
        by: str | None

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state.update(by=None)

    @event(Erased)
    def _erased(self, timestamp: datetime, customer_ids: tuple[UUID, ...], by: str | None) -> None:
        """`customer_ids`: whose keys were deleted, this customer's and the merged ones'."""
        self.erased_at = timestamp
        self.erased_ids = customer_ids
        self.identities = {}
        self.profile = self.profile.merged_with(dict.fromkeys(PERSONAL_PROFILE_FIELDS))
        self.attributes = {}


_MISSING = object()
_new = object.__new__
_RECORDED: dict[Outcome, type[Customer.MessageDecided]] = {
    Outcome.SEND: Customer.MessageAllowed,
    Outcome.REROUTE: Customer.MessageAllowed,
    Outcome.DEFER: Customer.MessageDeferred,
    Outcome.HOLD: Customer.MessageHeld,
    Outcome.SUPPRESS: Customer.MessageSuppressed,
}


PROFILE_EVENTS = (
    "Registered",
    "IdentityLinked",
    "ProfileUpdated",
    "Absorbed",
    "MergedInto",
    "ConsentChanged",
    "ConsentsInherited",
    "Erased",
)
"""The names of the events that change what a customer's profile, identities or consents say."""
