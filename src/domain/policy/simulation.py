"""What a draft rule set would have decided on recorded history: a pure tally of differences."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from datetime import datetime
    from uuid import UUID

    from domain.policy.decision import Decision, Outcome
    from domain.policy.vocabulary import Channel

__all__ = ["RecordedDecision", "SimulatedChange", "SimulationReport"]


@dataclass(frozen=True, slots=True)
class RecordedDecision:
    """A decision as it was recorded: what the draft is compared with."""

    decision_id: UUID
    customer_id: UUID
    at: datetime
    outcome: Outcome
    channel: Channel | None
    rule_set_version: int
    rule_ids: frozenset[str]


@dataclass(frozen=True, slots=True)
class SimulatedChange:
    """One decision the draft would have made differently."""

    recorded: RecordedDecision
    simulated: Decision

    @property
    def transition(self) -> str:
        before = self.recorded.outcome.value
        after = self.simulated.outcome.value
        if before == after:
            return f"{before} via {self.recorded.channel} -> {after} via {self.simulated.channel}"
        return f"{before} -> {after}"

    @property
    def rules_involved(self) -> frozenset[str]:
        """Rules that fired on one side only: the ones that made the difference."""
        now = frozenset(rule.rule_id for rule in self.simulated.fired)
        return now ^ self.recorded.rule_ids


@dataclass
class SimulationReport:
    """Counts by outcome transition and by rule, with a few examples of each kind."""

    max_examples: int = 20
    decisions: int = 0
    changed: int = 0
    by_outcome: Counter[str] = field(default_factory=Counter)
    by_rule: Counter[str] = field(default_factory=Counter)
    examples: list[SimulatedChange] = field(default_factory=list)

    def add(self, recorded: RecordedDecision, simulated: Decision) -> None:
        self.decisions += 1
        same_timing = recorded.outcome == simulated.outcome
        if same_timing and recorded.channel == simulated.channel:
            return
        change = SimulatedChange(recorded, simulated)
        self.changed += 1
        self.by_outcome[change.transition] += 1
        for rule_id in change.rules_involved:
            self.by_rule[rule_id] += 1
        if len(self.examples) < self.max_examples:
            self.examples.append(change)
