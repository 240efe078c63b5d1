"""Campaign stats: the figures per step and variant, and each arm against the control group."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from uuid import uuid4

import pytest
from statsmodels.stats.proportion import confint_proportions_2indep, proportion_confint

from adapters.inmemory.campaign_stats import InMemoryCampaignStats
from adapters.inmemory.campaigns import InMemoryCampaigns
from adapters.inmemory.storage import InMemoryStorage
from application.queries.campaign_stats import (
    CampaignStats,
    CampaignStatsQueries,
    Figures,
    compare,
    rate_of,
)
from domain.campaign.aggregate import Campaign
from domain.campaign.enrollment import Enrollment
from domain.campaign.journey import CONTROL, Response, Send
from domain.campaign.journey_reader import decode_journey
from domain.campaign.progress import (
    Action,
    Conversion,
    Dispatch,
    Held,
    Hold,
    HoldKind,
    Leave,
    Move,
    Progress,
)
from domain.campaign.stats import ALL, JOURNEY, StatsFold
from domain.shared.errors import NotFound

T0 = datetime(2026, 12, 1, 9, tzinfo=UTC)
SEND = {
    "type": "send",
    "channels": ["email"],
    "template": "offer",
    "purpose": "marketing",
    "team": "growth",
}
A_B_TEST = {
    "entry": {"type": "api"},
    "start": "offer",
    "steps": {
        "offer": {
            "type": "split",
            "arms": [
                {"name": "ten-off", "weight": 1, "next": "mail-ten-off"},
                {"name": "free-ship", "weight": 1, "next": "mail-free-ship"},
            ],
            "control": {"weight": 1},
        },
        "mail-ten-off": SEND,
        "mail-free-ship": SEND,
    },
    "goal": {"signal": "purchase", "within": "7d"},
}
JOURNEY_DOC = decode_journey(A_B_TEST, templates={"offer"}, segments=frozenset())


class World:
    """A campaign in memory, and enrollments taken through it by hand, event by event."""

    def __init__(self) -> None:
        self.storage = InMemoryStorage()
        self.campaign = Campaign.create("spring-offer", "Spring offer", JOURNEY_DOC, "ana", T0)
        self.storage.events.save(self.campaign)
        self.queries = CampaignStatsQueries(
            InMemoryCampaigns(self.storage), InMemoryCampaignStats(self.storage)
        )

    def enrol(
        self,
        arm: str,
        *,
        response: Response | None = None,
        reason: str = "",
        converted: bool = False,
        held: bool = False,
    ) -> Enrollment:
        enrollment = Enrollment.enter(self.campaign.id, 1, uuid4(), 1, "api", T0)
        actions: list[Action] = [Move("offer", None, "entered")]
        if arm == CONTROL:
            actions.append(Leave("held out in the control group of 'offer'", "offer", CONTROL))
        else:
            step = f"mail-{arm}"
            send = JOURNEY_DOC.step(step)
            assert isinstance(send, Send)
            actions += [Move(step, "offer", f"drawn into arm {arm!r}", arm)]
            actions += [Dispatch(step, send, f"{enrollment.id}:{step}")]
            if held:
                until = T0 + timedelta(minutes=10)
                actions.append(Held(step, Hold(HoldKind.DELIVERY, until), "waits for delivery"))
            else:
                actions.append(Leave(f"journey completed after {step!r}: send requested"))
        enrollment.record(Progress(tuple(actions)), T0)
        if response is not None and arm != CONTROL:
            enrollment.note_response(f"mail-{arm}", response, reason, None, T0)
        if converted:
            enrollment.convert(Conversion("purchase", None, T0), T0)
        self.storage.events.save(enrollment)
        return enrollment

    async def stats(self) -> CampaignStats:
        return await self.queries.get("spring-offer")


def figures(stats: CampaignStats, step: str, split: str | None, arm: str | None) -> Figures:
    variants = (
        stats.journey
        if step == JOURNEY
        else next(s.variants for s in stats.steps if s.step == step)
    )
    return next(v.figures for v in variants if (v.split, v.arm) == (split, arm))


class TestFigures:
    async def test_the_arms_and_the_control_group_add_up_to_the_enrollments(self) -> None:
        world = World()
        for arm, count in (("ten-off", 4), ("free-ship", 3), (CONTROL, 2)):
            for _ in range(count):
                world.enrol(arm)
        stats = await world.stats()
        assert figures(stats, JOURNEY, None, None).entered == 9
        drawn = [v.figures.entered for v in stats.journey if v.split == "offer"]
        assert sorted(drawn) == [2, 3, 4]
        assert figures(stats, "offer", None, None).entered == 9
        assert figures(stats, "mail-ten-off", "offer", "ten-off").entered == 4
        assert figures(stats, "mail-ten-off", "offer", "ten-off").sent == 4
        assert figures(stats, "mail-ten-off", None, None).sent == 4

    async def test_responses_are_counted_at_their_step_and_suppressions_by_reason(self) -> None:
        world = World()
        world.enrol("ten-off", response=Response.DELIVERED, reason="the provider said so")
        world.enrol("ten-off", response=Response.OPENED, reason="the provider reported read")
        for _ in range(2):
            world.enrol("ten-off", response=Response.SUPPRESSED, reason="suppressed: quiet hours")
        world.enrol("ten-off", response=Response.SUPPRESSED, reason="not sent: no email")
        world.enrol("free-ship", response=Response.DEFERRED, reason="deferred until later")
        stats = await world.stats()
        ten_off = figures(stats, "mail-ten-off", "offer", "ten-off")
        assert (ten_off.sent, ten_off.delivered, ten_off.opened) == (5, 1, 1)
        assert ten_off.suppressed == 3
        assert ten_off.suppressed_by_reason == {"quiet hours": 2, "not sent: no email": 1}
        assert figures(stats, "mail-free-ship", None, None).deferred == 1

    async def test_a_customer_held_at_a_step_is_waiting_there_until_they_move_on(self) -> None:
        world = World()
        held = world.enrol("ten-off", held=True)
        world.enrol("ten-off")
        stats = await world.stats()
        assert figures(stats, "mail-ten-off", "offer", "ten-off").waiting == 1
        held.exit("the campaign was archived: done", T0)
        world.storage.events.save(held)
        stats = await world.stats()
        assert figures(stats, "mail-ten-off", "offer", "ten-off").waiting == 0

    async def test_a_conversion_counts_for_the_journey_and_each_step_taken_also_after_leaving(
        self,
    ) -> None:
        world = World()
        world.enrol(CONTROL, converted=True)
        world.enrol("ten-off", converted=True)
        world.enrol("ten-off")
        stats = await world.stats()
        assert figures(stats, JOURNEY, None, None).converted == 2
        assert figures(stats, JOURNEY, "offer", CONTROL).converted == 1
        assert figures(stats, "offer", None, None).converted == 2
        assert figures(stats, "mail-ten-off", "offer", "ten-off").converted == 1

    async def test_a_variant_counts_a_step_only_from_its_draw_on_so_each_figure_has_its_entries(
        self,
    ) -> None:
        world = World()
        world.enrol(CONTROL, converted=True)
        world.enrol("ten-off", converted=True, response=Response.DELIVERED)
        stats = await world.stats()
        at_split = [v for s in stats.steps if s.step == "offer" for v in s.variants]
        assert [(v.split, v.arm) for v in at_split] == [(None, None)]
        assert figures(stats, "offer", None, None).converted == 2
        for step in stats.steps:
            for variant in step.variants:
                counted = variant.figures
                assert counted.entered >= max(counted.converted, counted.sent), (step, variant)

    async def test_the_arms_and_control_drawn_add_up_to_the_times_the_split_was_reached(
        self,
    ) -> None:
        world = World()
        for arm, count in (("ten-off", 5), ("free-ship", 2), (CONTROL, 3)):
            for _ in range(count):
                world.enrol(arm)
        stats = await world.stats()
        (split,) = stats.comparisons
        drawn = sum(v.figures.entered for v in stats.journey if v.split == "offer")
        assert split.reached == split.drawn == drawn == 10
        assert figures(stats, "offer", None, None).entered == 10

    async def test_a_step_nobody_has_taken_yet_is_listed_with_its_zeros(self) -> None:
        world = World()
        world.enrol("ten-off")
        stats = await world.stats()
        assert [s.step for s in stats.steps] == ["mail-free-ship", "mail-ten-off", "offer"]
        assert [(v.split, v.arm) for s in stats.steps for v in s.variants][:1] == [(None, None)]
        assert figures(stats, "mail-free-ship", None, None) == Figures()
        assert figures(stats, "mail-ten-off", None, None).sent == 1
        drawn = {(v.split, v.arm): v.figures.entered for v in stats.journey}
        assert drawn == {
            (None, None): 1,
            ("offer", "ten-off"): 1,
            ("offer", "free-ship"): 0,
            ("offer", CONTROL): 0,
        }

    async def test_a_campaign_nobody_entered_yet_shows_its_journey_and_arms_at_zero(self) -> None:
        stats = await World().stats()
        assert [(v.split, v.arm, v.figures) for v in stats.journey] == [
            (None, None, Figures()),
            ("offer", "control", Figures()),
            ("offer", "free-ship", Figures()),
            ("offer", "ten-off", Figures()),
        ]
        assert all(v.figures == Figures() for s in stats.steps for v in s.variants)

    async def test_an_unknown_campaign_is_not_found(self) -> None:
        with pytest.raises(NotFound):
            await World().queries.get("no-such-campaign")

    async def test_the_campaign_is_named_by_its_id_as_well(self) -> None:
        world = World()
        world.enrol("ten-off")
        stats = await world.queries.get(str(world.campaign.id))
        assert stats.key == "spring-offer"


class TestCosts:
    def test_the_last_cost_a_message_reports_stands_and_its_fallback_adds_to_the_step(
        self,
    ) -> None:
        campaign, enrollment, message, fallback = uuid4(), uuid4(), uuid4(), uuid4()
        fold = StatsFold({}, {})
        fold.entered(enrollment, campaign)
        fold.step_taken(enrollment, "offer", None, None)
        fold.step_taken(enrollment, "mail", "offer", "a")
        fold.message_for(message, enrollment, "mail")
        fold.cost(message, Decimal("0.05"), "EUR")
        fold.cost(message, Decimal("0.04"), "EUR")
        fold.fell_back(message, fallback)
        fold.cost(fallback, Decimal("0.01"), "EUR")
        counted = fold.counted()
        assert counted[(campaign, "mail", *ALL, "cost", "EUR")] == Decimal("0.05")
        assert counted[(campaign, "mail", "offer", "a", "cost", "EUR")] == Decimal("0.05")

    def test_a_message_of_no_campaign_costs_nothing_here(self) -> None:
        fold = StatsFold({}, {})
        fold.cost(uuid4(), Decimal("1"), "EUR")
        assert fold.counted() == {}


class TestComparison:
    async def test_each_arm_is_compared_with_the_control_group_as_statsmodels_answers(
        self,
    ) -> None:
        world = World()
        for arm, count, converted in (("ten-off", 8, 5), ("free-ship", 6, 1), (CONTROL, 7, 2)):
            for i in range(count):
                world.enrol(arm, converted=i < converted)
        (split,) = (await world.stats()).comparisons
        assert split.split == "offer"
        assert split.control is not None
        assert (split.control.enrollments, split.control.converted) == (7, 2)
        low, high = proportion_confint(2, 7, alpha=0.05, method="wilson")
        assert (split.control.low, split.control.high) == pytest.approx((low, high))
        ten_off = next(arm for arm in split.arms if arm.arm == "ten-off")
        assert ten_off.conversion.rate == pytest.approx(5 / 8)
        assert ten_off.difference == pytest.approx(5 / 8 - 2 / 7)
        low, high = confint_proportions_2indep(5, 8, 2, 7, method="newcomb", compare="diff")
        assert (ten_off.difference_low, ten_off.difference_high) == pytest.approx((low, high))

    def test_the_intervals_are_the_published_wilson_and_newcombe_ones(self) -> None:
        # Wilson (1927) as Newcombe (1998) gives it, and Newcombe's example 1, method 10.
        wilson = rate_of(81, 263)
        assert (wilson.low, wilson.high) == pytest.approx((0.2553, 0.3662), abs=1e-4)
        compared = compare("arm", rate_of(56, 70), rate_of(48, 80), 0.95)
        assert compared.difference == pytest.approx(0.2)
        interval = (compared.difference_low, compared.difference_high)
        assert interval == pytest.approx((0.0524, 0.3339), abs=1e-4)

    def test_a_bound_of_0_or_1_is_0_or_1_not_floating_point_noise(self) -> None:
        # statsmodels computes Wilson's lower bound of 0 of 7 as 2.8e-17, the upper of 7 of 7
        # as 0.9999999999999999.
        none, every = rate_of(0, 7), rate_of(7, 7)
        assert (none.low, every.high) == (0.0, 1.0)
        assert none.high == pytest.approx(proportion_confint(0, 7, method="wilson")[1])
        for n in range(1, 40):
            for rate in (rate_of(0, n), rate_of(n, n), rate_of(n // 2, n)):
                assert rate.low is not None
                assert rate.high is not None
                assert 0.0 <= rate.low <= rate.high <= 1.0
            assert (rate_of(0, n).low, rate_of(n, n).high) == (0.0, 1.0)
        compared = compare("arm", rate_of(0, 7), rate_of(7, 7), 0.95)
        assert compared.difference_low is not None
        assert compared.difference_high is not None
        assert -1.0 <= compared.difference_low <= compared.difference_high <= 1.0

    async def test_a_control_group_nobody_drew_has_its_counts_and_no_rate_with_the_reason(
        self,
    ) -> None:
        world = World()
        for _ in range(3):
            world.enrol("ten-off", converted=True)
        (split,) = (await world.stats()).comparisons
        assert split.control is not None
        assert (split.control.enrollments, split.control.converted) == (0, 0)
        assert split.control.rate is None
        assert split.control.reason == "nobody has been drawn into the control group yet"
        by_arm = {arm.arm: arm for arm in split.arms}
        assert list(by_arm) == ["ten-off", "free-ship"]
        assert by_arm["ten-off"].conversion.rate == 1.0
        assert by_arm["ten-off"].difference is None
        assert by_arm["ten-off"].reason == "nobody has been drawn into the control group yet"
        assert by_arm["free-ship"].conversion.enrollments == 0
        assert by_arm["free-ship"].conversion.reason == "nobody has been drawn into this arm yet"

    def test_without_a_control_group_or_enrollments_there_is_nothing_to_compare(self) -> None:
        empty = rate_of(0, 0)
        assert (empty.rate, empty.low, empty.high) == (None, None, None)
        assert compare("arm", rate_of(3, 10), None, 0.95).difference is None
        assert compare("arm", rate_of(3, 10), None, 0.95).reason == "the split has no control group"
        assert compare("arm", rate_of(3, 10), empty, 0.95).difference_low is None
