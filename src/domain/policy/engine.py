"""The policy engine: plain data in, a decision with its reasons out. No I/O, no clock."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from domain.assistant.intents import canonical_intent
from domain.policy.decision import (
    ContactRecord,
    CustomerFacts,
    Decision,
    Effect,
    FiredRule,
    Outcome,
    SendRequest,
)
from domain.policy.quiet_hours import quiet_until, zone
from domain.policy.rules import ApprovalRule, ConsentMode, FrequencyCap, OnExceed, RuleSet
from domain.policy.vocabulary import Channel, Purpose

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

__all__ = ["decide", "duration"]


def duration(span: timedelta) -> str:
    """A window as people say it: 24h, 7 days, 90 min."""
    seconds = int(span.total_seconds())
    if seconds % 86400 == 0 and seconds >= 2 * 86400:
        return f"{seconds // 86400} days"
    if seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    if seconds % 60 == 0:
        return f"{seconds // 60} min"
    return f"{seconds} s"


def decide(
    request: SendRequest,
    customer: CustomerFacts,
    ledger: Sequence[ContactRecord],
    rules: RuleSet,
    now: datetime,
) -> Decision:
    """Decides one send request. The same inputs always give the same decision."""
    fired: list[FiredRule] = []

    def suppress(rule_id: str, reason: str, channel: Channel | None = None) -> Decision:
        fired.append(FiredRule(rule_id, Effect.SUPPRESSED, reason, channel))
        return Decision(Outcome.SUPPRESS, rules.version, channel, None, tuple(fired))

    if request.expires_at is not None and request.expires_at <= now:
        return suppress("expiry", f"expired at {request.expires_at.isoformat()}")
    if not request.channels:
        return suppress("channels", "the request names no channel")

    if rules.dedup is not None and request.dedup_key is not None:
        since = now - rules.dedup.window
        for record in _within(ledger, since):
            if record.dedup_key == request.dedup_key:
                return suppress(
                    rules.dedup.id,
                    f"dedup key {request.dedup_key!r} was already sent at "
                    f"{record.at.isoformat()}, within {duration(rules.dedup.window)}",
                )

    chosen: Channel | None = None
    for channel in request.channels:
        blocks = _channel_blocks(channel, request, customer, rules, now, fired)
        if not blocks:
            chosen = channel
            break
        fired.extend(blocks)
    if chosen is None:
        return suppress("channels", "no requested channel may carry this message")

    defer_until: datetime | None = None
    for cap in rules.caps:
        verdict = _cap_verdict(cap, request, chosen, ledger, now)
        if verdict is None:
            continue
        free_at, reason = verdict
        if free_at is None or cap.on_exceed is OnExceed.SUPPRESS:
            return suppress(cap.id, reason, chosen)
        fired.append(FiredRule(cap.id, Effect.DEFERRED, reason, chosen))
        defer_until = free_at if defer_until is None else max(defer_until, free_at)

    time_zone = customer.time_zone or rules.default_time_zone
    if customer.time_zone is None:
        zone_note = " (the rule set's default)"
    elif customer.time_zone_inferred:
        zone_note = " (inferred from the phone number)"
    else:
        zone_note = ""
    for quiet in rules.quiet_hours:
        if not quiet.applies(chosen, request.purpose, request.priority):
            continue
        end = quiet_until(quiet.windows, defer_until or now, time_zone)
        if end is not None:
            fired.append(
                FiredRule(
                    quiet.id,
                    Effect.DEFERRED,
                    f"quiet hours in {time_zone}{zone_note} until "
                    f"{end.astimezone(zone(time_zone)).isoformat()}",
                    chosen,
                )
            )
            defer_until = end

    if defer_until is not None:
        if request.expires_at is not None and defer_until >= request.expires_at:
            return suppress(
                "expiry",
                f"expires at {request.expires_at.isoformat()}, before it may go at "
                f"{defer_until.isoformat()}",
                chosen,
            )
        return Decision(Outcome.DEFER, rules.version, chosen, defer_until, tuple(fired))
    for approval in rules.approvals:
        why = _hold_reason(approval, request, customer, ledger, rules, chosen)
        if why is None:
            continue
        granted = next((a for a in request.approved if a.rule_id == approval.id), None)
        if granted is not None:
            fired.append(
                FiredRule(approval.id, Effect.ALLOWED, f"{why}; approved by {granted.by}", chosen)
            )
            continue
        fired.append(FiredRule(approval.id, Effect.HELD, f"{why}: an operator approves", chosen))
        expires = now + approval.expires_after
        return Decision(Outcome.HOLD, rules.version, chosen, expires, tuple(fired))
    outcome = Outcome.SEND if chosen == request.channels[0] else Outcome.REROUTE
    return Decision(outcome, rules.version, chosen, None, tuple(fired))


def _hold_reason(
    approval: ApprovalRule,
    request: SendRequest,
    customer: CustomerFacts,
    ledger: Sequence[ContactRecord],
    rules: RuleSet,
    channel: Channel,
) -> str | None:
    """Why the rule holds the message for an operator, or None when one of its conditions
    does not hold."""
    if approval.purposes is not None and request.purpose not in approval.purposes:
        return None
    reasons: list[str] = []
    confidence = request.intent_confidence
    if approval.intents is not None:
        # By the intent's key, however the request spells it (`Refund_not_showing_up`).
        if request.intent is None or canonical_intent(request.intent) not in approval.intents:
            return None
        if approval.min_confidence > 0 and (
            confidence is None or confidence < approval.min_confidence
        ):
            return None
        reasons.append(f"it answers {request.intent!r}")
    if approval.confidence_below is not None:
        if confidence is None or confidence >= approval.confidence_below:
            return None
        reasons.append(
            f"the intent's confidence {confidence:.2f} is below {approval.confidence_below:g}"
        )
    if approval.cost_above is not None:
        cost = rules.channel_policy(channel).cost
        if cost <= approval.cost_above:
            return None
        reasons.append(f"one {channel} message costs {cost:g}, over {approval.cost_above:g}")
    if approval.first_message_to is not None:
        tier = customer.attributes.get(approval.tier_attribute)
        if not isinstance(tier, str) or tier not in approval.first_message_to or ledger:
            return None
        reasons.append(f"the first message to a {approval.tier_attribute} {tier!r} customer")
    if approval.audience_above is not None:
        if request.audience is None or request.audience <= approval.audience_above:
            return None
        reasons.append(
            f"a broadcast to {request.audience} customers, over {approval.audience_above}"
        )
    return ", ".join(reasons)


def _within(ledger: Sequence[ContactRecord], since: datetime) -> Iterator[ContactRecord]:
    """Records newer than `since`, newest first; the ledger is in the order it was written."""
    for record in reversed(ledger):
        if record.at <= since:
            return
        yield record


def _channel_blocks(
    channel: Channel,
    request: SendRequest,
    customer: CustomerFacts,
    rules: RuleSet,
    now: datetime,
    evidence: list[FiredRule],
) -> list[FiredRule]:
    """Why this channel may not carry the message; empty if it may."""
    policy = rules.channel_policy(channel)
    purpose = request.purpose

    def block(rule_id: str, reason: str) -> list[FiredRule]:
        return [FiredRule(rule_id, Effect.BLOCKED_CHANNEL, reason, channel)]

    relied_on: FiredRule | None = None

    listed = customer.suppressed.get(channel) or customer.suppressed.get(None)
    if listed is not None:
        return block("suppression", f"on the suppression list for {channel}: {listed}")
    if channel not in customer.reachable:
        return block(f"reachability.{channel}", f"no {channel} identity to send to")
    if (
        request.sensitive or policy.requires_verified_identity
    ) and channel not in customer.verified:
        return block(
            f"verification.{channel}",
            f"the {channel} identity is not verified, and this message needs a verified one",
        )
    opt_out = customer.opted_out.get(channel)
    if opt_out is not None and (purpose is not Purpose.TRANSACTIONAL or policy.hard_opt_out):
        return block(
            f"opt_out.{channel}",
            f"opted out of {channel} via {opt_out.source} at {opt_out.at.isoformat()}",
        )
    if purpose is not Purpose.TRANSACTIONAL or policy.consent_mode(purpose) is ConsentMode.OPT_IN:
        mode = policy.consent_mode(purpose)
        consent = customer.consents.get((channel, purpose))
        rule_id = f"consent.{channel}.{purpose}"
        if consent is not None and not consent.granted and mode is not ConsentMode.NONE:
            return block(
                rule_id,
                f"{purpose} consent on {channel} withdrawn via {consent.source} "
                f"at {consent.at.isoformat()}",
            )
        if mode is ConsentMode.OPT_IN:
            if consent is None:
                return block(rule_id, f"{channel} needs opt-in for {purpose}, and there is none")
            relied_on = FiredRule(
                rule_id,
                Effect.ALLOWED,
                f"{purpose} opt-in on {channel} via {consent.source} at {consent.at.isoformat()}",
                channel,
            )
    if policy.session_window is not None and not request.approved_template:
        last = customer.last_inbound.get(channel)
        if last is None or now - last >= policy.session_window:
            return block(
                f"session_window.{channel}",
                f"outside the {duration(policy.session_window)} customer-service window, "
                "only an approved template may go",
            )
    if relied_on is not None:
        evidence.append(relied_on)
    return []


def _cap_verdict(
    cap: FrequencyCap,
    request: SendRequest,
    channel: Channel,
    ledger: Sequence[ContactRecord],
    now: datetime,
) -> tuple[datetime | None, str] | None:
    """None if the cap leaves room; else when it frees up (None: never) and why."""
    if request.purpose in cap.exempt_purposes:
        return None
    if cap.channel is not None and cap.channel != channel:
        return None
    if cap.purpose is not None and cap.purpose != request.purpose:
        return None
    if cap.team is not None and cap.team != request.team:
        return None
    since = now - cap.window
    times = sorted(
        record.at
        for record in _within(ledger, since)
        if record.purpose not in cap.exempt_purposes
        and (cap.channel is None or record.channel == cap.channel)
        and (cap.purpose is None or record.purpose == cap.purpose)
        and (cap.team is None or record.team == cap.team)
        and (not cap.per_team or record.team == request.team)
    )
    limit = cap.limit
    if request.priority < cap.reserved_priority:
        limit -= cap.reserved
    if len(times) < limit:
        return None
    scope = "across all teams" if cap.team is None and not cap.per_team else f"for {request.team}"
    reason = f"{len(times)} of {cap.limit} messages in {duration(cap.window)} {scope}"
    if limit < cap.limit:
        reason += f" ({cap.reserved} kept for priority {cap.reserved_priority} and up)"
    if limit <= 0:
        return None, reason
    # Room opens when enough of the oldest messages leave the window.
    return times[len(times) - limit] + cap.window, reason
