"""The campaign stats' fold: a fallback's cost reported before its `FellBack` is counted once
the fallback is linked to the send, whether the two fall in one page or in two; the fallback of
a message no campaign sent is forgotten. A migration's move enters its target step."""

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


def figure(fold: StatsFold, step: str, name: str) -> Decimal:
    return sum(
        (
            by
            for key, by in fold.changes.items()
            if key[1] == step and key[2:4] == ("", "") and key[4] == name
        ),
        Decimal(0),
    )


class TestMigration:
    def test_a_move_by_a_migration_enters_the_target_step_and_leaves_the_source(self) -> None:
        fold = StatsFold({}, {})
        moved = [uuid4(), uuid4()]
        for enrollment in moved:
            fold.entered(enrollment, CAMPAIGN)
            fold.step_taken(enrollment, "old-wait", None, None)
            fold.waiting(enrollment, "old-wait")
        for enrollment in moved:
            fold.migrated(enrollment, "new-wait")
            fold.waiting(enrollment, "new-wait")  # the new version's step, taken at once
        assert (figure(fold, "new-wait", "entered"), figure(fold, "new-wait", "waiting")) == (2, 2)
        assert (figure(fold, "old-wait", "entered"), figure(fold, "old-wait", "waiting")) == (2, 0)

    def test_a_step_reached_by_a_migration_stays_listed_once_its_customers_leave(self) -> None:
        fold = StatsFold({}, {})
        enrollment = uuid4()
        fold.entered(enrollment, CAMPAIGN)
        fold.step_taken(enrollment, "old-wait", None, None)
        fold.waiting(enrollment, "old-wait")
        fold.migrated(enrollment, "new-wait")
        fold.waiting(enrollment, "new-wait")
        fold.exited(enrollment, None, None)  # the campaign archived
        listed = {key[1] for key in fold.counted()}
        assert "new-wait" in listed
        assert figure(fold, "new-wait", "waiting") == 0

    def test_a_conversion_after_a_migration_counts_at_the_step_moved_to(self) -> None:
        fold = StatsFold({}, {})
        enrollment = uuid4()
        fold.entered(enrollment, CAMPAIGN)
        fold.step_taken(enrollment, "old-wait", None, None)
        fold.migrated(enrollment, "new-wait")
        fold.converted(enrollment)
        assert figure(fold, "new-wait", "converted") == 1
