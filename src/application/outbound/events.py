"""Which stored events go out, on which subject, as which versioned payload: one entry a topic.

To publish another event, add an `OutboundEvent` for its stored topic (and a payload Struct in
`payloads.py`, and a section in docs/events.md); `OutboundEvents` picks up every entry given.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from application.outbound.payloads import (
    ApprovalDecidedV1,
    ApprovalRequestedV1,
    CampaignChangedV1,
    CampaignVersionPublishedV1,
    ConsentChangedV1,
    ConversationAssignmentV1,
    ConversationClassifiedV1,
    ConversationMessageV1,
    ConversationPriorityV1,
    ConversationSlaBreachedV1,
    ConversationStartedV1,
    ConversationStatusV1,
    ConversationTagsV1,
    CustomerErasedV1,
    CustomerRegisteredV1,
    CustomersMergedV1,
    EnrollmentConvertedV1,
    EnrollmentEnteredV1,
    EnrollmentExitedV1,
    EnrollmentStepTakenV1,
    IdentityLinkedV1,
    LinkedIdentityV1,
    ProfileUpdatedV1,
    SegmentEnteredV1,
    SegmentExitedV1,
    SuppressionAddedV1,
    SuppressionLiftedV1,
    TriggerFiredV1,
)
from domain.campaign.aggregate import Campaign
from domain.campaign.enrollment import Enrollment
from domain.catalog import topic_of
from domain.conversation.aggregate import Conversation, ConversationStatus
from domain.customer.aggregate import Customer
from domain.segments.aggregate import Membership
from domain.triggers.aggregate import Firing

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from uuid import UUID

    import msgspec

    from domain.customer.identities import IdentityClaim

__all__ = [
    "APPROVAL_EVENTS",
    "CAMPAIGN_EVENTS",
    "CONVERSATION_EVENTS",
    "CUSTOMER_EVENTS",
    "OUTBOUND_EVENTS",
    "SEGMENT_EVENTS",
    "TRIGGER_EVENTS",
    "OutboundEvent",
    "by_topic",
]

# Builders read the fields of the event classes of their topic, which the catalog resolves:
# typed per class would be one Callable type per entry.
Event = Any


def _about_the_stream(event: Event) -> tuple[UUID, ...]:
    return (event.originator_id,)


@dataclass(frozen=True, slots=True)
class OutboundEvent:
    """How events of one stored topic go out.

    `subject` follows `<prefix>.out.`; `type` is the CloudEvents type, the same whatever the
    prefix. `build` makes the payload of a domain event of the topic's class; `about` names the
    customers an event concerns, the first being the CloudEvents subject: each of them sees its
    events in log order.
    """

    topic: str
    subject: str
    type: str
    version: int
    build: Callable[[Event], msgspec.Struct]
    about: Callable[[Event], tuple[UUID, ...]] = _about_the_stream

    @property
    def dataschema(self) -> str:
        return f"urn:chorus:events:{self.subject}:v{self.version}"


def by_topic(entries: Iterable[OutboundEvent]) -> dict[str, OutboundEvent]:
    """The entries by stored topic; a topic may go out only one way."""
    found: dict[str, OutboundEvent] = {}
    for entry in entries:
        if entry.topic in found:
            raise ValueError(f"{entry.topic} is mapped twice")
        found[entry.topic] = entry
    return found


def _identity(claim: IdentityClaim) -> LinkedIdentityV1:
    return LinkedIdentityV1(identity=str(claim.identity), verification=claim.verification.value)


def _registered(event: Event) -> CustomerRegisteredV1:
    return CustomerRegisteredV1(
        customer_id=event.originator_id,
        identities=[_identity(claim) for claim in event.identities],
    )


def _identity_linked(event: Event) -> IdentityLinkedV1:
    claim = _identity(event.identity)
    return IdentityLinkedV1(
        customer_id=event.originator_id, identity=claim.identity, verification=claim.verification
    )


def _profile_updated(event: Event) -> ProfileUpdatedV1:
    return ProfileUpdatedV1(
        customer_id=event.originator_id,
        profile=dict(event.profile),
        attributes=dict(event.attributes),
    )


def _consent_changed(event: Event) -> ConsentChangedV1:
    return ConsentChangedV1(
        customer_id=event.originator_id,
        channel=event.channel.value,
        purpose=None if event.purpose is None else event.purpose.value,
        granted=event.granted,
        source=event.source,
    )


def _channel(channel: Any) -> str | None:
    return None if channel is None else str(channel.value)


def _suppression_added(event: Event) -> SuppressionAddedV1:
    return SuppressionAddedV1(
        customer_id=event.originator_id, channel=_channel(event.channel), reason=event.reason
    )


def _suppression_lifted(event: Event) -> SuppressionLiftedV1:
    return SuppressionLiftedV1(
        customer_id=event.originator_id, channel=_channel(event.channel), source=event.source
    )


def _merged(event: Event) -> CustomersMergedV1:
    return CustomersMergedV1(
        survivor_id=event.originator_id,
        merged_id=event.merged_id,
        reason=event.reason,
        identities=[_identity(claim) for claim in event.identities],
        profile=dict(event.profile),
        attributes=dict(event.attributes),
    )


def _erased(event: Event) -> CustomerErasedV1:
    return CustomerErasedV1(customer_id=event.originator_id, erased_ids=list(event.customer_ids))


def _survivor_and_merged(event: Event) -> tuple[UUID, ...]:
    return (event.originator_id, event.merged_id)


_CUSTOMER = topic_of(Customer) + "."

# A merge is recorded twice, Absorbed on the survivor and MergedInto on the merged customer;
# it goes out once, from Absorbed, which carries both ids and what moved.
CUSTOMER_EVENTS: tuple[OutboundEvent, ...] = (
    OutboundEvent(
        _CUSTOMER + "Registered",
        "customers.registered",
        "chorus.customer.registered",
        1,
        _registered,
    ),
    OutboundEvent(
        _CUSTOMER + "IdentityLinked",
        "customers.identity_linked",
        "chorus.customer.identity_linked",
        1,
        _identity_linked,
    ),
    OutboundEvent(
        _CUSTOMER + "ProfileUpdated",
        "customers.profile_updated",
        "chorus.customer.profile_updated",
        1,
        _profile_updated,
    ),
    OutboundEvent(
        _CUSTOMER + "ConsentChanged",
        "customers.consent_changed",
        "chorus.customer.consent_changed",
        1,
        _consent_changed,
    ),
    OutboundEvent(
        _CUSTOMER + "SuppressionAdded",
        "customers.suppression_added",
        "chorus.customer.suppression_added",
        1,
        _suppression_added,
    ),
    OutboundEvent(
        _CUSTOMER + "SuppressionLifted",
        "customers.suppression_lifted",
        "chorus.customer.suppression_lifted",
        1,
        _suppression_lifted,
    ),
    OutboundEvent(
        _CUSTOMER + "Absorbed",
        "customers.merged",
        "chorus.customer.merged",
        1,
        _merged,
        about=_survivor_and_merged,
    ),
    OutboundEvent(
        _CUSTOMER + "Erased",
        "customers.erased",
        "chorus.customer.erased",
        1,
        _erased,
    ),
)


def _segment_entered(event: Membership.Entered) -> SegmentEnteredV1:
    return SegmentEnteredV1(
        customer_id=event.customer_id,
        segment=event.segment_key,
        segment_id=event.segment_id,
        segment_version=event.segment_version,
    )


def _segment_exited(event: Membership.Exited) -> SegmentExitedV1:
    return SegmentExitedV1(
        customer_id=event.customer_id,
        segment=event.segment_key,
        segment_id=event.segment_id,
        segment_version=event.segment_version,
        reason=event.reason,
    )


def _the_customer(event: Event) -> tuple[UUID, ...]:
    return (event.customer_id,)


SEGMENT_EVENTS: tuple[OutboundEvent, ...] = (
    OutboundEvent(
        topic_of(Membership.Entered),
        "segments.entered",
        "chorus.segment.entered",
        1,
        _segment_entered,
        about=_the_customer,
    ),
    OutboundEvent(
        topic_of(Membership.Exited),
        "segments.exited",
        "chorus.segment.exited",
        1,
        _segment_exited,
        about=_the_customer,
    ),
)


def _trigger_fired(event: Firing.Fired) -> TriggerFiredV1:
    return TriggerFiredV1(
        firing_id=event.originator_id,
        trigger=event.trigger_key,
        trigger_id=event.trigger_id,
        trigger_version=event.trigger_version,
        customer_id=event.customer_id,
        source_kind=event.source_kind,
        source_event_id=f"{event.source_stream_id}:{event.source_version}",
        occurred_at=event.source_occurred_at,
        recorded_at=event.source_recorded_at,
        signal_type=event.signal_type,
        signal_event_id=event.signal_event_id,
        segment=event.segment_key,
        exit_reason=event.exit_reason,
    )


TRIGGER_EVENTS: tuple[OutboundEvent, ...] = (
    OutboundEvent(
        topic_of(Firing.Fired),
        "triggers.fired",
        "chorus.trigger.fired",
        1,
        _trigger_fired,
        about=_the_customer,
    ),
)


def _campaign_changed(event: Event) -> CampaignChangedV1:
    return CampaignChangedV1(
        campaign_id=event.originator_id, by=event.by, reason=getattr(event, "reason", None)
    )


def _version_published(event: Event) -> CampaignVersionPublishedV1:
    return CampaignVersionPublishedV1(
        campaign_id=event.originator_id,
        version=event.number,
        name=event.name,
        by=event.by,
        migrated=bool(event.migration.moves),
    )


def _enrollment_entered(event: Event) -> EnrollmentEnteredV1:
    return EnrollmentEnteredV1(
        enrollment_id=event.originator_id,
        campaign_id=event.campaign_id,
        campaign_version=event.campaign_version,
        customer_id=event.customer_id,
        entry=event.entry,
        source=event.source,
    )


def _step_taken(event: Event) -> EnrollmentStepTakenV1:
    return EnrollmentStepTakenV1(
        enrollment_id=event.originator_id,
        campaign_id=event.campaign_id,
        customer_id=event.customer_id,
        step=event.step,
        came_from=event.came_from,
        reason=event.reason,
        arm=event.arm,
    )


def _converted(event: Event) -> EnrollmentConvertedV1:
    return EnrollmentConvertedV1(
        enrollment_id=event.originator_id,
        campaign_id=event.campaign_id,
        customer_id=event.customer_id,
        signal=event.signal,
        signal_event_id=event.signal_event_id,
        converted_at=event.converted_at,
    )


def _exited(event: Event) -> EnrollmentExitedV1:
    return EnrollmentExitedV1(
        enrollment_id=event.originator_id,
        campaign_id=event.campaign_id,
        customer_id=event.customer_id,
        reason=event.reason,
        split=event.split,
        arm=event.arm,
    )


def _the_enrolled(event: Event) -> tuple[UUID, ...]:
    """The customer, which events stored before they named it leave to their enrollment."""
    return (event.customer_id or event.originator_id,)


_CAMPAIGN = topic_of(Campaign) + "."
_ENROLLMENT = topic_of(Enrollment) + "."


def _status_change(name: str) -> OutboundEvent:
    subject = name.lower()
    return OutboundEvent(
        _CAMPAIGN + name,
        f"campaigns.{subject}",
        f"chorus.campaign.{subject}",
        1,
        _campaign_changed,
    )


# A campaign's own events are about no customer: their subject is the campaign's id. An
# enrollment's are about its customer, which its events name (StepTaken, Converted and Exited
# since their version 2: an enrollment id does not give its customer back).
CAMPAIGN_EVENTS: tuple[OutboundEvent, ...] = (
    *(_status_change(name) for name in ("Activated", "Paused", "Resumed", "Archived")),
    OutboundEvent(
        _CAMPAIGN + "VersionPublished",
        "campaigns.version_published",
        "chorus.campaign.version_published",
        1,
        _version_published,
    ),
    OutboundEvent(
        _ENROLLMENT + "Entered",
        "campaigns.enrollment_entered",
        "chorus.campaign.enrollment_entered",
        1,
        _enrollment_entered,
        about=_the_customer,
    ),
    OutboundEvent(
        _ENROLLMENT + "StepTaken",
        "campaigns.step_taken",
        "chorus.campaign.step_taken",
        1,
        _step_taken,
        about=_the_enrolled,
    ),
    OutboundEvent(
        _ENROLLMENT + "Converted",
        "campaigns.enrollment_converted",
        "chorus.campaign.enrollment_converted",
        1,
        _converted,
        about=_the_enrolled,
    ),
    OutboundEvent(
        _ENROLLMENT + "Exited",
        "campaigns.enrollment_exited",
        "chorus.campaign.enrollment_exited",
        1,
        _exited,
        about=_the_enrolled,
    ),
)


def _conversation_started(event: Event) -> ConversationStartedV1:
    return ConversationStartedV1(
        conversation_id=event.originator_id,
        customer_id=event.customer_id,
        topic=event.topic,
        by=event.by,
    )


def _conversation_message(event: Event) -> ConversationMessageV1:
    message = event.message
    return ConversationMessageV1(
        conversation_id=event.originator_id,
        message_id=message.message_id,
        direction=str(message.direction),
        channel=str(message.channel),
        at=message.at,
        by=event.by,
    )


def _assignment(change: str) -> Callable[[Event], ConversationAssignmentV1]:
    def build(event: Event) -> ConversationAssignmentV1:
        return ConversationAssignmentV1(
            conversation_id=event.originator_id,
            change=change,
            team=getattr(event, "team", None),
            agent=getattr(event, "agent", None),
            reason=event.reason,
            by=event.by,
        )

    return build


def _status(status: ConversationStatus | None) -> Callable[[Event], ConversationStatusV1]:
    def build(event: Event) -> ConversationStatusV1:
        return ConversationStatusV1(
            conversation_id=event.originator_id,
            status=str(status or event.status),
            reason=getattr(event, "reason", None),
            until=getattr(event, "until", None),
            by=event.by,
        )

    return build


def _classified(event: Event) -> ConversationClassifiedV1:
    return ConversationClassifiedV1(
        conversation_id=event.originator_id,
        intent=event.intent,
        sentiment=None if event.sentiment is None else str(event.sentiment),
        confidence=event.confidence,
        by=event.by,
    )


def _priority_changed(event: Event) -> ConversationPriorityV1:
    return ConversationPriorityV1(
        conversation_id=event.originator_id,
        priority=str(event.priority),
        reason=event.reason,
        by=event.by,
    )


def _tags(change: str) -> Callable[[Event], ConversationTagsV1]:
    def build(event: Event) -> ConversationTagsV1:
        return ConversationTagsV1(
            conversation_id=event.originator_id,
            change=change,
            tags=sorted(event.tags),
            by=event.by,
        )

    return build


def _sla_breached(event: Event) -> ConversationSlaBreachedV1:
    return ConversationSlaBreachedV1(
        conversation_id=event.originator_id, sla=str(event.sla), due=event.due, by=event.by
    )


_CONVERSATION = topic_of(Conversation) + "."


def _conversation(
    name: str, subject: str, build: Callable[[Event], msgspec.Struct]
) -> OutboundEvent:
    return OutboundEvent(
        _CONVERSATION + name,
        f"conversations.{subject}",
        f"chorus.conversation.{subject}",
        1,
        build,
    )


# A conversation's events are about its stream: the CloudEvents subject is the conversation,
# and a subscriber sees each conversation's events in order. Notes and delivery statuses stay
# inside (the thread is read through the API); a reply that was not delivered is published as
# the status change it makes (`reply_undelivered`, back to waiting on us, with the reason).
CONVERSATION_EVENTS: tuple[OutboundEvent, ...] = (
    _conversation("Started", "started", _conversation_started),
    _conversation("MessageReceived", "message_received", _conversation_message),
    _conversation("MessageSent", "message_sent", _conversation_message),
    _conversation("Assigned", "assigned", _assignment("assigned")),
    _conversation("Transferred", "transferred", _assignment("transferred")),
    _conversation("Unassigned", "unassigned", _assignment("unassigned")),
    _conversation("Queued", "queued", _assignment("queued")),
    _conversation("Snoozed", "snoozed", _status(ConversationStatus.SNOOZED)),
    _conversation("Woke", "woke", _status(ConversationStatus.WAITING_ON_US)),
    _conversation("Resolved", "resolved", _status(ConversationStatus.RESOLVED)),
    _conversation("Reopened", "reopened", _status(ConversationStatus.WAITING_ON_US)),
    _conversation("MarkedWaiting", "marked_waiting", _status(None)),
    _conversation(
        "ReplyUndelivered", "reply_undelivered", _status(ConversationStatus.WAITING_ON_US)
    ),
    _conversation("Classified", "classified", _classified),
    _conversation("PriorityChanged", "priority_changed", _priority_changed),
    _conversation("Tagged", "tagged", _tags("tagged")),
    _conversation("Untagged", "untagged", _tags("untagged")),
    _conversation("SlaBreached", "sla_breached", _sla_breached),
)


def _approval_requested(event: Event) -> ApprovalRequestedV1:
    held = next(rule for rule in event.fired if str(rule.effect) == "held")
    return ApprovalRequestedV1(
        customer_id=event.originator_id,
        approval_id=event.decision_id,
        message_id=event.message_id,
        rule_id=held.rule_id,
        reason=held.reason,
        team=event.request.team,
        purpose=str(event.request.purpose),
        channel=_channel(event.channel),
        expires_at=event.defer_until,
    )


def _approval_decided(event: Event) -> ApprovalDecidedV1:
    return ApprovalDecidedV1(
        customer_id=event.originator_id,
        approval_id=event.approval_id,
        message_id=event.message_id,
        verdict=event.verdict,
        by=event.by,
        note=event.note,
    )


APPROVAL_EVENTS: tuple[OutboundEvent, ...] = (
    OutboundEvent(
        _CUSTOMER + "MessageHeld",
        "approvals.requested",
        "chorus.approval.requested",
        1,
        _approval_requested,
    ),
    OutboundEvent(
        _CUSTOMER + "ApprovalSettled",
        "approvals.decided",
        "chorus.approval.decided",
        1,
        _approval_decided,
    ),
)
"""Messages held for an operator, and the verdicts (docs/approvals.md)."""

OUTBOUND_EVENTS: tuple[OutboundEvent, ...] = (
    CUSTOMER_EVENTS
    + SEGMENT_EVENTS
    + TRIGGER_EVENTS
    + CAMPAIGN_EVENTS
    + CONVERSATION_EVENTS
    + APPROVAL_EVENTS
)
"""Everything Chorus publishes; segment, trigger and campaign events join here."""
