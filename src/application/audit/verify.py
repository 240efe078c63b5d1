"""`chorus audit verify`: the log replayed and checked.

Three checks, each reported on its own: every read model equals its rebuild (invariant 8);
every message has an allowing decision under the rule-set version it names (invariant 1);
and every recorded decision, decided again by the policy engine from the customer as they
stood just before it, under the rule set it names, comes out the same.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from domain.customer.aggregate import Customer
from domain.policy.decision import ApprovedHold, Effect, FiredRule, Outcome
from domain.policy.defaults import default_rule_set
from domain.policy.engine import decide
from domain.policy.rule_book import RuleBook
from domain.shared.topics import events_of

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from datetime import datetime
    from uuid import UUID

    from eventsourcing.domain import CanMutateAggregate

    from domain.policy.decision import CustomerFacts
    from domain.policy.rules import RuleSet
    from domain.policy.vocabulary import Channel
    from ports.verification import ReadModelComparison, ReadModelRebuilds, VerifiedLog

__all__ = [
    "CHECK_DECISIONS",
    "CHECK_READ_MODELS",
    "CHECK_SENT",
    "CheckReport",
    "DecisionReplay",
    "Difference",
    "Progress",
    "PublishedRuleSet",
    "VerifyLog",
    "check_message",
    "rule_sets_of",
]

CHECK_READ_MODELS = "read models equal their rebuild"
CHECK_SENT = "every message has an allowing decision"
CHECK_DECISIONS = "decisions decided again agree"

_PUBLISHED = events_of(RuleBook)["Published"]
_APPROVAL_SETTLED = events_of(Customer)["ApprovalSettled"]
_WITHDRAWN = "withdrawn"
"""The rule a deferred message's withdrawal names (`Customer.withdraw_deferred`): its sender
ended it, no rule decided it, so there is nothing to decide again."""
_ALLOWING = frozenset({Outcome.SEND, Outcome.REROUTE})
_WAITING = frozenset({Outcome.DEFER, Outcome.HOLD})
_GRANTING = frozenset({"approved", "edited"})
"""Verdicts after which the held request is decided again by the rules, the hold approved."""
_ENDING = frozenset({"rejected", "expired"})
"""Verdicts after which the held message is suppressed, citing the rule that held it
(`application.approvals.settle_approval.suppress_held`)."""
_STEP = 1_000  # events between two moves of a progress bar


@dataclass(frozen=True, slots=True)
class Difference:
    subject: str  # what differs: a message, a decision, a read model's table
    detail: str


@dataclass(slots=True)
class CheckReport:
    """One check: what it looked at, how many differences it found, and the first of them."""

    check: str
    limit: int = 20
    checked: int = 0
    differences: int = 0
    shown: list[Difference] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.differences == 0

    def found(self, difference: Difference, count: int = 1) -> None:
        self.differences += count
        if len(self.shown) < self.limit:
            self.shown.append(difference)


class Progress(Protocol):
    """Told how far each check has got (a progress bar)."""

    def begin(self, check: str, total: int) -> None: ...

    def reached(self, check: str, done: int) -> None:
        """`done` of the check's total are done."""
        ...


@dataclass(frozen=True, slots=True)
class PublishedRuleSet:
    rules: RuleSet
    published_at: datetime | None  # None: the built-in rules, version 1, in force from the start


def rule_sets_of(rule_book: Iterable[CanMutateAggregate[UUID]]) -> dict[int, PublishedRuleSet]:
    """Every rule set by version, from the rule book's stream; version 1 is the built-in."""
    versions = {1: PublishedRuleSet(default_rule_set(), None)}
    for event in rule_book:
        if isinstance(event, _PUBLISHED):
            rules: RuleSet = vars(event)["rules"]
            versions[rules.version] = PublishedRuleSet(rules, event.timestamp)
    return versions


@dataclass(frozen=True, slots=True)
class _Decided:
    """A decision as a message's check needs it."""

    message_id: UUID
    outcome: Outcome
    channel: Channel | None
    rule_set_version: int
    at: datetime


@dataclass(frozen=True, slots=True)
class _Hold:
    """A hold for approval, as the decisions that settle it need it: its id is the
    approval's."""

    message_id: UUID
    rule_id: str
    expires_at: datetime | None


@dataclass(frozen=True, slots=True)
class _Verdict:
    """An operator's (or the expiry's) verdict on a held message (`ApprovalSettled`)."""

    approval_id: UUID
    message_id: UUID
    verdict: str
    by: str
    note: str


def _ending_reason(verdict: _Verdict, hold: _Hold) -> str:
    """Why a rejected or expired hold was suppressed, in the words the live path records."""
    if verdict.verdict == "rejected":
        return f"rejected by {verdict.by}" + (f": {verdict.note}" if verdict.note else "")
    until = "" if hold.expires_at is None else hold.expires_at.isoformat()
    return f"no operator approved it by {until}"


def _said(outcome: Outcome, channel: Any, defer_until: Any, fired: Sequence[Any]) -> str:
    where = "" if channel is None else f" on {channel.value}"
    until = "" if defer_until is None else f" until {defer_until.isoformat()}"
    rules = ", ".join(f"{rule.rule_id} {rule.effect.value}" for rule in fired) or "no rule"
    return f"{outcome.value}{where}{until} ({rules})"


class DecisionReplay:
    """Replays customers' streams one at a time; before each recorded decision, decides its
    request again from the customer as they stood, under the rule set the decision names,
    and reports any disagreement. Keeps each decision for the messages' check.

    A decision that follows an operator's verdict on a held message is decided again as the
    live settlement decides it (`application.approvals.settle_approval`): after `approved` or
    `edited`, the rules decide the recorded request, which carries the approval; after
    `rejected` or `expired`, the message is suppressed citing the rule that held it. What
    needs a hold that another customer's stream may record (a hold before a merge) is checked
    once every stream is replayed (`finish`): the suppression that ends a hold, every approval
    a request carries (an approved or edited verdict on that message by that operator, on a
    hold by that rule), every withdrawal (a message deferred or held before)."""

    def __init__(self, rule_sets: dict[int, PublishedRuleSet], report: CheckReport) -> None:
        self.rule_sets = rule_sets
        self.report = report
        self.decided: dict[UUID, _Decided] = {}
        self.holds: dict[UUID, _Hold] = {}
        self.granted: dict[UUID, list[_Verdict]] = {}  # message id -> approving verdicts
        self.ended: list[tuple[_Verdict, Customer.MessageDecided]] = []
        self.approvals: list[Customer.MessageDecided] = []  # decisions on approved requests
        self.withdrawals: list[Customer.MessageDecided] = []

    def replay(self, stream: Sequence[CanMutateAggregate[UUID]]) -> None:
        customer: Any = None
        # A decision changes none of the facts the rules read (only the ledger), so they are
        # worked out again only after an event that may change them.
        facts: CustomerFacts | None = None
        verdict: _Verdict | None = None  # the event just before, if it settled an approval
        for event in stream:
            if isinstance(event, Customer.MessageDecided) and customer is not None:
                if facts is None:
                    facts = customer.facts()
                settled = verdict if verdict and verdict.message_id == event.message_id else None
                self._decide_again(customer, facts, event, settled)
                self._keep(event)
                verdict = None
            elif isinstance(event, _APPROVAL_SETTLED):
                verdict = _Verdict(*(vars(event)[name] for name in _VERDICT_FIELDS))
                if verdict.verdict in _GRANTING:
                    self.granted.setdefault(verdict.message_id, []).append(verdict)
            else:
                facts = verdict = None
            customer = event.mutate(customer)

    def _keep(self, event: Customer.MessageDecided) -> None:
        self.decided[event.decision_id] = _Decided(
            event.message_id,
            event.outcome,
            event.channel,
            event.rule_set_version,
            event.timestamp,
        )
        if event.outcome is Outcome.HOLD:
            held = next((r for r in event.fired if r.effect is Effect.HELD), None)
            rule_id = "" if held is None else held.rule_id
            self.holds[event.decision_id] = _Hold(event.message_id, rule_id, event.defer_until)

    def _decide_again(
        self,
        customer: Customer,
        facts: CustomerFacts,
        event: Customer.MessageDecided,
        verdict: _Verdict | None,
    ) -> None:
        if event.request.approved:
            self.approvals.append(event)
        if verdict is not None and verdict.verdict in _ENDING:
            self.report.checked += 1
            self.ended.append((verdict, event))
            return
        if any(rule.rule_id == _WITHDRAWN for rule in event.fired):
            self.report.checked += 1
            self.withdrawals.append(event)
            return
        self.report.checked += 1
        subject = _subject(event)
        published = self.rule_sets.get(event.rule_set_version)
        if published is None:
            detail = f"names rule-set version {event.rule_set_version}, never published"
            self.report.found(Difference(subject, detail))
            return
        again = decide(event.request, facts, customer.ledger, published.rules, event.timestamp)
        recorded = (event.outcome, event.channel, event.defer_until, tuple(event.fired))
        if (again.outcome, again.channel, again.defer_until, again.fired) != recorded:
            said = _said(event.outcome, event.channel, event.defer_until, event.fired)
            now = _said(again.outcome, again.channel, again.defer_until, again.fired)
            self.report.found(Difference(subject, f"recorded {said}; decided again: {now}"))

    def finish(self) -> None:
        """The checks that needed every stream replayed first."""
        for verdict, event in self.ended:
            self._check_ended(verdict, event)
        for event in self.approvals:
            for approval in event.request.approved:
                if not self._granted(event.message_id, approval):
                    detail = (
                        f"carries an approval of {approval.rule_id} by {approval.by}"
                        " that no verdict on the message recorded"
                    )
                    self.report.found(Difference(_subject(event), detail))
        if not self.withdrawals:
            return
        waited = {d.message_id for d in self.decided.values() if d.outcome in _WAITING}
        for event in self.withdrawals:
            if event.outcome is not Outcome.SUPPRESS:
                detail = f"a withdrawal that does not suppress: {event.outcome.value}"
                self.report.found(Difference(_subject(event), detail))
            elif event.message_id not in waited:
                detail = "withdraws a message that was never deferred nor held"
                self.report.found(Difference(_subject(event), detail))

    def _granted(self, message_id: UUID, approval: ApprovedHold) -> bool:
        return any(
            verdict.by == approval.by
            and (hold := self.holds.get(verdict.approval_id)) is not None
            and hold.rule_id == approval.rule_id
            and hold.message_id == message_id
            for verdict in self.granted.get(message_id, ())
        )

    def _check_ended(self, verdict: _Verdict, event: Customer.MessageDecided) -> None:
        subject = _subject(event)
        hold = self.holds.get(verdict.approval_id)
        if hold is None or hold.message_id != event.message_id:
            detail = f"follows a verdict on approval {verdict.approval_id}, no hold of it"
            self.report.found(Difference(subject, detail))
            return
        published = self.rule_sets.get(event.rule_set_version)
        if published is None or (
            published.published_at is not None and published.published_at > event.timestamp
        ):
            detail = f"names rule-set version {event.rule_set_version}, not published by then"
            self.report.found(Difference(subject, detail))
            return
        reason = _ending_reason(verdict, hold)
        fired = (FiredRule(hold.rule_id, Effect.SUPPRESSED, reason),)
        recorded = (event.outcome, event.channel, event.defer_until, tuple(event.fired))
        if (Outcome.SUPPRESS, None, None, fired) != recorded:
            said = _said(event.outcome, event.channel, event.defer_until, event.fired)
            now = _said(Outcome.SUPPRESS, None, None, fired)
            because = "; ".join(rule.reason for rule in event.fired) or "no reason"
            detail = (
                f"recorded {said} because {because}; {verdict.verdict} by {verdict.by},"
                f" it ends as: {now} because {reason}"
            )
            self.report.found(Difference(subject, detail))


_VERDICT_FIELDS = ("approval_id", "message_id", "verdict", "by", "note")


def _subject(event: Customer.MessageDecided) -> str:
    return f"decision {event.decision_id} (message {event.message_id})"


def check_message(
    queued: CanMutateAggregate[UUID],
    decided: dict[UUID, _Decided],
    rule_sets: dict[int, PublishedRuleSet],
    report: CheckReport,
) -> None:
    """A message (its `Queued`) has a recorded decision that allowed it, on its channel, under
    a rule-set version published by then (invariant 1)."""
    report.checked += 1
    fields = vars(queued)
    message_id: UUID = fields["originator_id"]
    decision_id: UUID = fields["decision_id"]
    channel: Channel = fields["channel"]
    subject = f"message {message_id}"
    decision = decided.get(decision_id)
    if decision is None:
        report.found(Difference(subject, f"names decision {decision_id}, which is not on record"))
    elif decision.message_id != message_id:
        detail = f"decision {decision_id} was about message {decision.message_id}"
        report.found(Difference(subject, detail))
    elif decision.outcome not in _ALLOWING:
        detail = f"decision {decision_id} did not allow it: {decision.outcome.value}"
        report.found(Difference(subject, detail))
    elif decision.channel is not channel:
        allowed_on = "no channel" if decision.channel is None else decision.channel.value
        detail = f"queued on {channel.value}; decision {decision_id} allowed {allowed_on}"
        report.found(Difference(subject, detail))
    else:
        published = rule_sets.get(decision.rule_set_version)
        if published is None or (
            published.published_at is not None and published.published_at > decision.at
        ):
            detail = (
                f"decision {decision_id} names rule-set version {decision.rule_set_version}, "
                "not published when it was decided"
            )
            report.found(Difference(subject, detail))


class VerifyLog:
    """Runs the three checks; the log's two in one snapshot of it."""

    def __init__(
        self, log: VerifiedLog, read_models: ReadModelRebuilds | None, shown: int = 20
    ) -> None:
        self.log = log
        self.read_models = read_models
        self.shown = shown
        self.events = 0  # read from the log by the last run, for a rate

    async def __call__(self, progress: Progress) -> list[CheckReport]:
        reports = []
        if self.read_models is not None:
            reports.append(await self._read_models(self.read_models, progress))
        sent = CheckReport(CHECK_SENT, self.shown)
        decisions = CheckReport(CHECK_DECISIONS, self.shown)
        async with self.log.snapshot() as snapshot:
            size = await snapshot.size()
            rule_sets = rule_sets_of(await snapshot.rule_book())
            replay = DecisionReplay(rule_sets, decisions)
            progress.begin(CHECK_DECISIONS, size.customer_events)
            progress.begin(CHECK_SENT, size.messages)
            read = waiting = 0
            async for stream in snapshot.customer_streams():
                replay.replay(stream)
                waiting += len(stream)
                if waiting >= _STEP:
                    read, waiting = read + waiting, 0
                    progress.reached(CHECK_DECISIONS, read)
            replay.finish()
            progress.reached(CHECK_DECISIONS, read + waiting)
            messages = 0
            async for queued in snapshot.queued_messages():
                check_message(queued, replay.decided, rule_sets, sent)
                messages += 1
                if messages % _STEP == 0:
                    progress.reached(CHECK_SENT, messages)
            progress.reached(CHECK_SENT, messages)
        self.events = read + waiting + messages
        return [*reports, sent, decisions]

    async def _read_models(self, read_models: ReadModelRebuilds, progress: Progress) -> CheckReport:
        report = CheckReport(CHECK_READ_MODELS, self.shown)
        names = read_models.names()
        progress.begin(CHECK_READ_MODELS, len(names))
        for done, name in enumerate(names, 1):
            _compared(report, await read_models.compare(name, self.shown))
            progress.reached(CHECK_READ_MODELS, done)
        return report


def _compared(report: CheckReport, comparison: ReadModelComparison) -> None:
    for table in comparison.tables:
        report.checked += table.rows
        if table.equal:
            continue
        subject = f"{comparison.name}: {table.table}"
        summary = (
            f"{table.only_live} row(s) only in the live table, "
            f"{table.only_rebuilt} only in its rebuild"
        )
        report.found(Difference(subject, summary), table.only_live + table.only_rebuilt)
        for sample in table.samples:
            if len(report.shown) < report.limit:
                report.shown.append(Difference(subject, sample))
