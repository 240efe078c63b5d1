"""The campaign stats' fold: a fallback's cost reported before its `FellBack` is counted once
the fallback is linked to the send, whether the two fall in one page or in two; the fallback of
a message no campaign sent is forgotten."""

from __future__ import annotations

from decimal import Decimal
from uuid import UUID, uuid4

from domain.campaign.stats import MessageCost, StatsFold

CAMPAIGN = UUID("00000000-0000-4000-8000-00000000c0de")
STEP = "mail"


def started() -> tuple[StatsFold, UUID, UUID]:
    """An enrollment whose send at `mail` is a message; returns the fold, the enrollment and
    the message."""
    fold = StatsFold({}, {})
    enrollment, message = uuid4(), uuid4()
    fold.entered(enrollment, CAMPAIGN)
    fold.step_taken(enrollment, STEP, None, None)
    fold.message_for(message, enrollment, STEP)
    return fold, enrollment, message


def cost_of(fold: StatsFold) -> Decimal:
    return sum(
        (by for key, by in fold.changes.items() if key[1] == STEP and key[4] == "cost"),
        Decimal(0),
    )


class TestFallbackCosts:
    async def test_a_cost_reported_before_the_fallback_is_linked_is_counted_when_it_is(
        self,
    ) -> None:
        fold, _, message = started()
        fallback = uuid4()
        fold.fallback_allowed(fallback)
        fold.cost(fallback, Decimal("0.05"), "EUR")
        assert cost_of(fold) == 0
        fold.fell_back(message, fallback)
        assert cost_of(fold) == Decimal("0.05")
        fold.cost(fallback, Decimal("0.07"), "EUR")  # the last report stands
        assert cost_of(fold) == Decimal("0.07")

    async def test_the_same_events_over_two_pages_count_the_same(self) -> None:
        fold, enrollment, message = started()
        fallback = uuid4()
        fold.fallback_allowed(fallback)
        fold.cost(fallback, Decimal("0.05"), "EUR")
        # The next page loads what the first stored.
        kept = fold.messages[fallback]
        assert (kept.enrollment_id, kept.cost) == (None, Decimal("0.05"))
        second = StatsFold(
            dict(fold.traces),
            {
                message: MessageCost(enrollment, STEP),
                fallback: MessageCost(None, None, kept.cost, kept.currency),
            },
        )
        second.fell_back(message, fallback)
        assert cost_of(fold) + cost_of(second) == Decimal("0.05")

    async def test_the_fallback_of_a_message_no_campaign_sent_is_forgotten(self) -> None:
        fold = StatsFold({}, {})
        fallback = uuid4()
        fold.fallback_allowed(fallback)
        fold.cost(fallback, Decimal("0.05"), "EUR")
        fold.fell_back(uuid4(), fallback)
        assert fallback not in fold.messages
        assert fold.forgotten == {fallback}
        assert not fold.changes
