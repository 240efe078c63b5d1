"""Replays recorded decisions against a draft rule set, without writing anything."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from application.queries.team_scope import EVERY_TEAM, TeamScope
from domain.customer.aggregate import Customer
from domain.policy.engine import decide
from domain.policy.simulation import RecordedDecision, SimulationReport

if TYPE_CHECKING:
    from datetime import datetime

    from domain.policy.rules import RuleSet
    from ports.history import History

__all__ = ["SimulateRules"]

_DECISIONS = Customer.MessageDecided


class SimulateRules:
    """Each recorded decision is decided again on what the customer was at that moment.

    The customer is rebuilt from its stream up to just before the decision, so consents,
    opt-outs, the time zone and the contact ledger are those the real decision saw. Decisions
    are compared one by one against the recorded history: a draft that would have sent more
    does not change the ledger that later recorded decisions saw.
    """

    def __init__(self, history: History) -> None:
        self.history = history

    async def __call__(
        self,
        draft: RuleSet,
        since: datetime,
        until: datetime,
        *,
        max_customers: int = 10_000,
        max_examples: int = 20,
        scope: TeamScope = EVERY_TEAM,
    ) -> SimulationReport:
        """`scope`: the teams whose decisions a key limited to teams may read; the others'
        are neither counted nor shown."""
        report = SimulationReport(max_examples=max_examples)
        for customer_id in await self.history.customers_decided_between(
            since, until, max_customers
        ):
            customer: Any = None
            for event in await self.history.stream(customer_id):
                if (
                    isinstance(event, _DECISIONS)
                    and customer is not None
                    and since <= event.timestamp <= until
                    and scope.sees_send(event.request.team)
                ):
                    recorded = RecordedDecision(
                        decision_id=event.decision_id,
                        customer_id=customer_id,
                        at=event.timestamp,
                        outcome=event.outcome,
                        channel=event.channel,
                        rule_set_version=event.rule_set_version,
                        rule_ids=frozenset(rule.rule_id for rule in event.fired),
                    )
                    simulated = decide(
                        event.request, customer.facts(), customer.ledger, draft, event.timestamp
                    )
                    report.add(recorded, simulated)
                customer = event.mutate(customer)
        return report
