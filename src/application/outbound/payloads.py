"""The public payloads of outbound events, one versioned Struct per subject, in a CloudEvent.

These are a contract with other services (docs/events.md): a field is never renamed, retyped or
dropped within a version. Adding an optional field keeps the version; anything else is a new
Struct with the next version, published beside the old one until its consumers have moved.
"""

from __future__ import annotations

# Imported at run time, not under TYPE_CHECKING: msgspec resolves the field types.
from datetime import datetime
from typing import Generic, TypeVar
from uuid import UUID

import msgspec

__all__ = [
    "ApprovalDecidedV1",
    "ApprovalRequestedV1",
    "AttributeValue",
    "CampaignChangedV1",
    "CampaignVersionPublishedV1",
    "CloudEvent",
    "ConsentChangedV1",
    "ConversationAssignmentV1",
    "ConversationClassifiedV1",
    "ConversationMessageV1",
    "ConversationPriorityV1",
    "ConversationSlaBreachedV1",
    "ConversationStartedV1",
    "ConversationStatusV1",
    "ConversationTagsV1",
    "CustomerErasedV1",
    "CustomerRegisteredV1",
    "CustomersMergedV1",
    "EnrollmentConvertedV1",
    "EnrollmentEnteredV1",
    "EnrollmentExitedV1",
    "EnrollmentStepTakenV1",
    "IdentityLinkedV1",
    "LinkedIdentityV1",
    "ProfileUpdatedV1",
    "SuppressionAddedV1",
    "SuppressionLiftedV1",
    "TriggerFiredV1",
]

PayloadT = TypeVar("PayloadT")
AttributeValue = str | int | float | bool | None


class CloudEvent(msgspec.Struct, Generic[PayloadT], kw_only=True, frozen=True):
    """A CloudEvents 1.0 envelope, structured JSON mode; `version` is the payload's version."""

    specversion: str = "1.0"
    id: str
    source: str
    type: str
    subject: str
    time: datetime
    datacontenttype: str = "application/json"
    dataschema: str
    version: int
    data: PayloadT


class LinkedIdentityV1(msgspec.Struct, kw_only=True, frozen=True):
    """An identity as `type:value` (`email:ana@example.org`), with how well it is verified."""

    identity: str
    verification: str


class CustomerRegisteredV1(msgspec.Struct, kw_only=True, frozen=True):
    customer_id: UUID
    identities: list[LinkedIdentityV1]


class IdentityLinkedV1(msgspec.Struct, kw_only=True, frozen=True):
    """A new identity, or a stronger verification of a known one."""

    customer_id: UUID
    identity: str
    verification: str


class ProfileUpdatedV1(msgspec.Struct, kw_only=True, frozen=True):
    """Only what changed; an attribute set to null was removed."""

    customer_id: UUID
    profile: dict[str, str | None]
    attributes: dict[str, AttributeValue]


class ConsentChangedV1(msgspec.Struct, kw_only=True, frozen=True):
    """A grant or withdrawal; purpose null is the whole channel (an opt-out such as STOP)."""

    customer_id: UUID
    channel: str
    purpose: str | None
    granted: bool
    source: str


class ApprovalRequestedV1(msgspec.Struct, kw_only=True, frozen=True):
    """A message held for an operator's approval (docs/approvals.md); the approval's id is
    the hold decision's."""

    customer_id: UUID
    approval_id: UUID
    message_id: UUID
    rule_id: str
    reason: str
    team: str
    purpose: str
    channel: str | None
    expires_at: datetime


class ApprovalDecidedV1(msgspec.Struct, kw_only=True, frozen=True):
    """An operator's verdict on a held message, or its expiry (`by`: `scheduler`)."""

    customer_id: UUID
    approval_id: UUID
    message_id: UUID
    verdict: str  # approved, edited, rejected, expired
    by: str
    note: str


class SuppressionAddedV1(msgspec.Struct, kw_only=True, frozen=True):
    """Channel null is every channel."""

    customer_id: UUID
    channel: str | None
    reason: str


class SuppressionLiftedV1(msgspec.Struct, kw_only=True, frozen=True):
    customer_id: UUID
    channel: str | None
    source: str


class CustomerErasedV1(msgspec.Struct, kw_only=True, frozen=True):
    """The customer's personal data was erased for good: forget it too (ADR 0019)."""

    customer_id: UUID
    erased_ids: list[UUID]


class CustomersMergedV1(msgspec.Struct, kw_only=True, frozen=True):
    """`merged_id` now resolves to `survivor_id`, which took over its identities and filled
    its own profile gaps and missing attributes from it."""

    survivor_id: UUID
    merged_id: UUID
    reason: str
    identities: list[LinkedIdentityV1]
    profile: dict[str, str | None]
    attributes: dict[str, AttributeValue]


class SegmentEnteredV1(msgspec.Struct, kw_only=True, frozen=True):
    """The customer now meets the segment's condition (version `segment_version`)."""

    customer_id: UUID
    segment: str
    segment_id: UUID
    segment_version: int


class SegmentExitedV1(msgspec.Struct, kw_only=True, frozen=True):
    """The customer left the segment: `reason` is `condition` (no longer met, by a new fact or
    by time passing), `merged` (merged into another customer) or `segment deleted`."""

    customer_id: UUID
    segment: str
    segment_id: UUID
    segment_version: int
    reason: str


class TriggerFiredV1(msgspec.Struct, kw_only=True, frozen=True):
    """A trigger (version `trigger_version`) fired on one source event: a recorded signal
    (`source_kind` `signal`) or an entry into or exit from a segment (`segment_entered`,
    `segment_exited`). At most one per trigger and source event; `firing_id` names it."""

    firing_id: UUID
    trigger: str
    trigger_id: UUID
    trigger_version: int
    customer_id: UUID
    source_kind: str
    source_event_id: str
    occurred_at: datetime
    recorded_at: datetime
    signal_type: str | None
    signal_event_id: str | None
    segment: str | None
    exit_reason: str | None


class CampaignChangedV1(msgspec.Struct, kw_only=True, frozen=True):
    """A campaign's status changed (activated, paused, resumed, archived) by `by`, the key that
    acted; `reason` is given for an archive only."""

    campaign_id: UUID
    by: str
    reason: str | None = None


class CampaignVersionPublishedV1(msgspec.Struct, kw_only=True, frozen=True):
    """A live campaign's edit published version `version`; enrolled customers finish on theirs
    unless `migrated` (the new version moves some of them)."""

    campaign_id: UUID
    version: int
    name: str
    by: str
    migrated: bool


class EnrollmentEnteredV1(msgspec.Struct, kw_only=True, frozen=True):
    """The customer's `entry`-th entry into the campaign's version `campaign_version`; `source`
    says what let them in (`signal <type> <event id>`, `entered segment <key>`, a schedule,
    `api`, `api:<idempotency key>`)."""

    enrollment_id: UUID
    campaign_id: UUID
    campaign_version: int
    customer_id: UUID
    entry: int
    source: str


class EnrollmentStepTakenV1(msgspec.Struct, kw_only=True, frozen=True):
    """The enrolled customer moved to `step` (from `came_from`, null for the first) and why:
    the branch case that held, the arm drawn (`arm`), the wait that ended."""

    enrollment_id: UUID
    campaign_id: UUID | None
    customer_id: UUID | None
    step: str
    came_from: str | None
    reason: str
    arm: str | None


class EnrollmentConvertedV1(msgspec.Struct, kw_only=True, frozen=True):
    """The journey's goal signal (`signal`, its event id `signal_event_id`) came within the
    attribution window, at `converted_at`; the customer leaves the journey if still in it."""

    enrollment_id: UUID
    campaign_id: UUID | None
    customer_id: UUID | None
    signal: str
    signal_event_id: str | None
    converted_at: datetime


class EnrollmentExitedV1(msgspec.Struct, kw_only=True, frozen=True):
    """The customer left the journey and why (an exit step, the goal, the campaign archived,
    their version archived, the customer erased); `split` and `arm` when it was a hold-out."""

    enrollment_id: UUID
    campaign_id: UUID | None
    customer_id: UUID | None
    reason: str
    split: str | None
    arm: str | None


# Conversations: the CloudEvents `subject` is the conversation (its events are in order by it);
# `by` is who acted: an agent's key, `customer`, `router`, `sla-timer`, an API key. No message
# text or note goes out: subscribers read the thread through the API.


class ConversationStartedV1(msgspec.Struct, kw_only=True, frozen=True):
    """A customer's conversation on `topic` began: one thread whatever the channels."""

    conversation_id: UUID
    customer_id: UUID
    topic: str
    by: str


class ConversationMessageV1(msgspec.Struct, kw_only=True, frozen=True):
    """A message joined the thread: from the customer (`inbound`) or an agent's reply
    (`outbound`, its id the `Message`'s), on `channel`."""

    conversation_id: UUID
    message_id: UUID
    direction: str
    channel: str
    at: datetime
    by: str


class ConversationAssignmentV1(msgspec.Struct, kw_only=True, frozen=True):
    """Who holds the conversation now and why: `assigned` to an agent, `transferred` to a team
    (and agent), `unassigned` back to its team's queue, `queued` to a team nobody could take
    it in."""

    conversation_id: UUID
    change: str
    team: str | None
    agent: str | None
    reason: str
    by: str


class ConversationStatusV1(msgspec.Struct, kw_only=True, frozen=True):
    """The conversation's status changed: `snoozed` (until `until`), `waiting_on_us` (woke,
    reopened, marked), `waiting_on_customer` (marked), `resolved`; `reason` when one was given."""

    conversation_id: UUID
    status: str
    reason: str | None = None
    until: datetime | None = None
    by: str


class ConversationClassifiedV1(msgspec.Struct, kw_only=True, frozen=True):
    """What the conversation is about and how the customer sounds, as classified."""

    conversation_id: UUID
    intent: str | None
    sentiment: str | None
    confidence: float | None
    by: str


class ConversationPriorityV1(msgspec.Struct, kw_only=True, frozen=True):
    """The conversation's priority changed (routing, an escalation, an agent), and why."""

    conversation_id: UUID
    priority: str
    reason: str
    by: str


class ConversationTagsV1(msgspec.Struct, kw_only=True, frozen=True):
    """Tags were added to the conversation (`tagged`) or taken off it (`untagged`)."""

    conversation_id: UUID
    change: str
    tags: list[str]
    by: str


class ConversationSlaBreachedV1(msgspec.Struct, kw_only=True, frozen=True):
    """Nobody answered in time: the `sla` target (first_response or next_response) was due at
    `due`; the escalation the routing document asks for follows as its own events."""

    conversation_id: UUID
    sla: str
    due: datetime
    by: str
