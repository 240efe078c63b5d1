"""The journey interpreter: where a customer goes next and why, from plain facts alone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from domain.campaign.journey import Journey, Response
from domain.campaign.progress import (
    ArrivedSignal,
    Change,
    Conversion,
    Dispatch,
    Facts,
    Held,
    Hold,
    HoldKind,
    Leave,
    Move,
    Place,
    Progress,
    Traveller,
    advance,
    begin,
    reach_goal,
)
from domain.segments.conditions import SegmentFacts

from .journeys import example, journey, read, send

T0 = datetime(2026, 3, 2, 12, tzinfo=UTC)  # a Monday
CAMPAIGN = UUID("00000000-0000-4000-8000-00000000c0de")


def traveller(customer: UUID | None = None, version: int = 1) -> Traveller:
    return Traveller(CAMPAIGN, version, customer or uuid4(), uuid4())


def held(progress: Progress) -> Held:
    last = progress.actions[-1]
    assert isinstance(last, Held)
    return last


def place_after(progress: Progress, entered_at: datetime = T0) -> Place:
    """Where the customer is once `progress` is recorded, as an enrollment would say."""
    step, hold, taken = "", None, 0
    for action in progress.actions:
        if isinstance(action, Move):
            step, hold, taken = action.step, None, taken + 1
        elif isinstance(action, Held):
            hold = action.hold
    return Place(step, entered_at, hold, taken)


def branching(*cases: dict[str, Any]) -> Journey:
    return read(
        journey(
            {
                "check": {"type": "branch", "cases": list(cases), "else": "other"},
                "gold": {"type": "exit", "reason": "gold"},
                "other": {"type": "exit", "reason": "other"},
            }
        )
    )


class TestSends:
    def test_a_send_is_requested_with_a_dedup_key_and_the_journey_goes_on(self) -> None:
        who = traveller()
        progress = begin(
            read(journey({"welcome": send(next="bye"), "bye": {"type": "exit"}})), who, Facts(T0)
        )
        [dispatch] = progress.dispatches
        assert dispatch.step == "welcome"
        assert dispatch.dedup_key == f"campaign:{who.enrollment_id}:1:welcome"
        assert progress.steps == ("welcome", "bye")
        assert progress.left == Leave("exit step")

    def test_the_same_place_decides_the_same_dedup_key(self) -> None:
        who = traveller()
        document = read(journey({"welcome": send()}))
        assert begin(document, who, Facts(T0)) == begin(document, who, Facts(T0))

    def test_a_send_over_the_send_limit_is_skipped_and_the_journey_goes_on(self) -> None:
        document = read(
            journey(
                {"welcome": send(next="bye"), "bye": {"type": "exit"}}, policies={"send_limit": 2}
            )
        )
        progress = begin(document, traveller(), Facts(T0, sends=2))
        assert progress.dispatches == ()
        assert (
            Move("bye", "welcome", "not sent: the send limit of 2 is reached") in progress.actions
        )

    def test_a_step_with_no_next_ends_the_journey(self) -> None:
        progress = begin(read(journey({"welcome": send()})), traveller(), Facts(T0))
        left = progress.left
        assert left is not None
        assert left.reason.startswith("journey completed after 'welcome'")


class TestFallbackOnNonDelivery:
    def journey(self) -> Journey:
        return read(example())

    def at_whatsapp(self) -> tuple[Journey, Traveller, Place]:
        document, who = self.journey(), traveller()
        waited = begin(document, who, Facts(T0))
        sent = advance(document, who, place_after(waited), Facts(T0 + timedelta(days=1)))
        assert held(sent).hold.kind is HoldKind.DELIVERY
        assert held(sent).hold.until == T0 + timedelta(days=1, minutes=10)
        return document, who, place_after(sent)

    def test_a_delivered_message_goes_on_to_next(self) -> None:
        document, who, place = self.at_whatsapp()
        responses = {"whatsapp": frozenset({Response.DELIVERED})}
        progress = advance(
            document, who, place, Facts(T0 + timedelta(days=1, minutes=2), responses=responses)
        )
        assert progress.actions[0] == Move("reply", "whatsapp", "delivered")

    def test_no_delivery_within_the_time_falls_back_to_sms(self) -> None:
        document, who, place = self.at_whatsapp()
        progress = advance(document, who, place, Facts(T0 + timedelta(days=1, minutes=10)))
        assert progress.actions[0] == Move("sms", "whatsapp", "not delivered within 10m")
        assert [d.step for d in progress.dispatches] == ["sms"]

    def test_a_suppressed_send_falls_back_at_once(self) -> None:
        document, who, place = self.at_whatsapp()
        responses = {"whatsapp": frozenset({Response.SUPPRESSED})}
        progress = advance(
            document, who, place, Facts(T0 + timedelta(days=1, minutes=1), responses=responses)
        )
        assert progress.actions[0] == Move("sms", "whatsapp", "not delivered: suppressed")

    def test_before_the_time_and_with_no_news_nothing_happens(self) -> None:
        document, who, place = self.at_whatsapp()
        assert advance(document, who, place, Facts(T0 + timedelta(days=1, minutes=5))) == Progress()


class TestWaits:
    def test_a_wait_for_a_duration_holds_until_it_is_over(self) -> None:
        document = read(
            journey(
                {"pause": {"type": "wait", "for": "1h30m", "next": "welcome"}, "welcome": send()}
            )
        )
        who = traveller()
        progress = begin(document, who, Facts(T0))
        assert progress.timer == T0 + timedelta(hours=1, minutes=30)
        place = place_after(progress)
        assert advance(document, who, place, Facts(T0 + timedelta(hours=1))) == Progress()
        later = advance(document, who, place, Facts(T0 + timedelta(hours=1, minutes=30)))
        assert later.actions[0] == Move("welcome", "pause", "the wait is over")

    def test_a_wait_that_ends_the_journey_lets_the_customer_go_and_holds_nobody_again(
        self,
    ) -> None:
        document = read(journey({"pause": {"type": "wait", "for": "1h"}}))
        who = traveller()
        place = place_after(begin(document, who, Facts(T0)))
        later = advance(document, who, place, Facts(T0 + timedelta(hours=2)))
        assert later == Progress((Leave("journey completed after 'pause': the wait is over"),))
        assert later.timer is None

    def test_a_wait_until_a_time_of_day_is_on_the_customers_own_clock(self) -> None:
        document = read(
            journey(
                {
                    "morning": {"type": "wait", "until": "09:00", "next": "welcome"},
                    "welcome": send(),
                }
            )
        )
        lisbon = begin(document, traveller(), Facts(T0, time_zone="Europe/Lisbon"))
        tokyo = begin(document, traveller(), Facts(T0, time_zone="Asia/Tokyo"))
        assert lisbon.timer == datetime(2026, 3, 3, 9, tzinfo=UTC)
        assert tokyo.timer == datetime(2026, 3, 3, 0, tzinfo=UTC)  # 09:00 JST, the next morning

    def test_a_customer_with_no_time_zone_waits_on_utc(self) -> None:
        document = read(journey({"morning": {"type": "wait", "until": "09:00"}}))
        assert begin(document, traveller(), Facts(T0)).timer == datetime(2026, 3, 3, 9, tzinfo=UTC)

    def test_a_wait_until_a_time_on_given_days_skips_the_others(self) -> None:
        step = {"type": "wait", "until": "09:00", "days": ["sat"]}
        document = read(journey({"weekend": step}))
        assert begin(document, traveller(), Facts(T0)).timer == datetime(2026, 3, 7, 9, tzinfo=UTC)

    def test_a_wait_until_a_time_the_clocks_skip_comes_as_late_as_the_jump(self) -> None:
        # Europe/Lisbon springs forward at 01:00 on 2026-03-29: 01:30 that day does not exist.
        document = read(journey({"night": {"type": "wait", "until": "01:30"}}))
        facts = Facts(datetime(2026, 3, 28, 12, tzinfo=UTC), time_zone="Europe/Lisbon")
        assert begin(document, traveller(), facts).timer == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)


class TestWaitingForASignal:
    def setup(self) -> tuple[Journey, Traveller, Place]:
        document = read(
            journey(
                {
                    "reply": {
                        "type": "wait_for_signal",
                        "signal": "message.replied",
                        "where": [{"property": "channel", "op": "eq", "value": "whatsapp"}],
                        "timeout": "2d",
                        "on_signal": "thanks",
                        "on_timeout": "nudge",
                    },
                    "thanks": {"type": "exit", "reason": "replied"},
                    "nudge": send(),
                }
            )
        )
        who = traveller()
        progress = begin(document, who, Facts(T0))
        assert held(progress).hold.signal == "message.replied"
        return document, who, place_after(progress)

    def test_the_signal_before_the_timeout_takes_the_signal_branch(self) -> None:
        document, who, place = self.setup()
        replied = ArrivedSignal("message.replied", {"channel": "whatsapp"})
        progress = advance(document, who, place, Facts(T0 + timedelta(hours=3), signal=replied))
        assert progress.actions[0] == Move("thanks", "reply", "message.replied arrived")
        assert progress.left == Leave("replied")

    def test_a_signal_failing_the_filter_changes_nothing(self) -> None:
        document, who, place = self.setup()
        replied = ArrivedSignal("message.replied", {"channel": "sms"})
        assert (
            advance(document, who, place, Facts(T0 + timedelta(hours=3), signal=replied))
            == Progress()
        )

    def test_the_timeout_takes_the_timeout_branch(self) -> None:
        document, who, place = self.setup()
        progress = advance(document, who, place, Facts(T0 + timedelta(days=2)))
        assert progress.actions[0] == Move("nudge", "reply", "no message.replied within 2d")


class TestBranches:
    def test_the_first_case_that_holds_is_taken_and_said_why(self) -> None:
        gold = {"type": "attribute", "name": "tier", "op": "eq", "value": "gold"}
        document = branching({"condition": gold, "next": "gold"})
        customer = SegmentFacts(attributes={"tier": "gold"})
        progress = begin(document, traveller(), Facts(T0, customer=customer))
        move = progress.actions[1]
        assert isinstance(move, Move)
        assert move.step == "gold"
        assert move.reason.startswith("case 1 holds: ")
        assert '"tier"' in move.reason

    def test_no_case_holding_takes_else(self) -> None:
        document = branching({"in_segment": "vip", "next": "gold"})
        progress = begin(document, traveller(), Facts(T0, segments=frozenset({"lapsed-buyers"})))
        assert progress.actions[1] == Move("other", "check", "no case holds")

    def test_segment_membership_is_a_case(self) -> None:
        document = branching({"in_segment": "vip", "next": "gold"})
        progress = begin(document, traveller(), Facts(T0, segments=frozenset({"vip"})))
        assert progress.actions[1] == Move("gold", "check", "case 1 holds: in segment 'vip'")

    def test_the_response_to_an_earlier_send_is_a_case(self) -> None:
        document = read(
            journey(
                {
                    "welcome": send(next="pause"),
                    "pause": {"type": "wait", "for": "1d", "next": "check"},
                    "check": {
                        "type": "branch",
                        "cases": [
                            {
                                "response": {"step": "welcome", "is": ["opened", "clicked"]},
                                "next": "bye",
                            }
                        ],
                        "else": "again",
                    },
                    "again": send(),
                    "bye": {"type": "exit"},
                }
            )
        )
        who = traveller()
        place = place_after(begin(document, who, Facts(T0)))
        responses = {"welcome": frozenset({Response.DELIVERED, Response.CLICKED})}
        progress = advance(document, who, place, Facts(T0 + timedelta(days=1), responses=responses))
        assert (
            Move("bye", "check", "case 1 holds: the send 'welcome' was clicked") in progress.actions
        )


def asked_right_after(*responses: str) -> Journey:
    """A send, then at once a branch on what became of it."""
    return read(
        journey(
            {
                "welcome": send(next="check"),
                "check": {
                    "type": "branch",
                    "cases": [
                        {"response": {"step": "welcome", "is": list(responses)}, "next": "sms"}
                    ],
                    "else": "bye",
                },
                "sms": send(channels=["sms"]),
                "bye": {"type": "exit"},
            }
        )
    )


class TestABranchRightAfterASend:
    def test_a_send_whose_suppression_a_branch_asks_about_holds_for_its_decision(self) -> None:
        who = traveller()
        progress = begin(asked_right_after("suppressed"), who, Facts(T0))
        assert progress.steps == ("welcome",)
        assert [d.step for d in progress.dispatches] == ["welcome"]
        assert held(progress) == Held(
            "welcome", Hold(HoldKind.DECISION, T0), "waits for the rules' decision"
        )
        assert progress.timer == T0

    def test_a_suppressed_send_takes_the_case_asking_for_it(self) -> None:
        document, who = asked_right_after("suppressed", "deferred"), traveller()
        place = place_after(begin(document, who, Facts(T0)))
        responses = {"welcome": frozenset({Response.SUPPRESSED})}
        progress = advance(document, who, place, Facts(T0, responses=responses))
        assert progress.actions[:2] == (
            Move("check", "welcome", "send requested: it was suppressed"),
            Move("sms", "check", "case 1 holds: the send 'welcome' was suppressed"),
        )

    def test_a_deferred_send_takes_the_case_asking_for_it(self) -> None:
        document, who = asked_right_after("deferred"), traveller()
        place = place_after(begin(document, who, Facts(T0)))
        responses = {"welcome": frozenset({Response.DEFERRED})}
        progress = advance(document, who, place, Facts(T0, responses=responses))
        assert Move("sms", "check", "case 1 holds: the send 'welcome' was deferred") in (
            progress.actions
        )

    def test_an_allowed_send_goes_on_as_soon_as_it_is_decided_to_the_else(self) -> None:
        document, who = asked_right_after("suppressed"), traveller()
        place = place_after(begin(document, who, Facts(T0)))
        progress = advance(document, who, place, Facts(T0))
        assert progress.actions == (
            Move("check", "welcome", "send requested"),
            Move("bye", "check", "no case holds"),
            Leave("exit step"),
        )

    def test_a_send_asked_only_about_later_responses_does_not_hold(self) -> None:
        progress = begin(asked_right_after("delivered", "opened"), traveller(), Facts(T0))
        assert progress.steps == ("welcome", "check", "bye")
        assert progress.timer is None


class TestSplits:
    def document(self, control_next: bool = False) -> Journey:
        control: dict[str, Any] = {"weight": 1}
        if control_next:
            control["next"] = "b"
        return read(
            journey(
                {
                    "ab": {
                        "type": "split",
                        "arms": [
                            {"name": "a", "weight": 1, "next": "a"},
                            {"name": "b", "weight": 1, "next": "b"},
                        ],
                        "control": control,
                    },
                    "a": send(),
                    "b": send("ten-off"),
                }
            )
        )

    def test_a_customer_lands_in_the_same_arm_on_every_entry_of_a_version(self) -> None:
        customer = uuid4()
        firsts = {
            begin(self.document(), traveller(customer), Facts(T0)).actions[1:2] for _ in range(5)
        }
        assert len(firsts) == 1

    def test_the_arm_is_recorded_on_the_move(self) -> None:
        moves = [begin(self.document(), traveller(), Facts(T0)).actions[1] for _ in range(60)]
        arms = {m.arm for m in moves if isinstance(m, Move)}
        assert arms == {"a", "b"}
        assert all(m.reason == f"drawn into arm {m.arm!r}" for m in moves if isinstance(m, Move))

    def test_the_control_group_with_no_next_leaves_at_once_marked_as_control(self) -> None:
        leaves = [begin(self.document(), traveller(), Facts(T0)).left for _ in range(60)]
        held_out = [leave for leave in leaves if leave is not None and leave.arm is not None]
        assert held_out
        assert all(
            leave == Leave("held out in the control group of 'ab'", "ab", "control")
            for leave in held_out
        )

    def test_the_control_group_with_a_next_goes_there(self) -> None:
        for _ in range(30):
            move = begin(self.document(control_next=True), traveller(), Facts(T0)).actions[1]
            assert isinstance(move, Move)
            assert move.step == ("a" if move.arm == "a" else "b")


class TestUpdatesAndExits:
    def test_an_update_asks_for_the_change_and_goes_on(self) -> None:
        update = {"type": "update", "attributes": {"welcomed": True}, "next": "bye"}
        progress = begin(
            read(journey({"mark": update, "bye": {"type": "exit", "reason": "done"}})),
            traveller(),
            Facts(T0),
        )
        assert progress.changes == (Change("mark", {}, {"welcomed": True}),)
        assert progress.left == Leave("done")


class TestTheGoal:
    def test_the_goal_ends_the_journey_wherever_the_customer_is_as_a_conversion(self) -> None:
        document = read(example())
        who = traveller()
        place = place_after(begin(document, who, Facts(T0)))
        purchase = ArrivedSignal("purchase", {}, T0 + timedelta(hours=5), "evt-1")
        progress = advance(document, who, place, Facts(T0 + timedelta(hours=5), signal=purchase))
        assert progress.actions == (
            Conversion("purchase", "evt-1", T0 + timedelta(hours=5)),
            Leave("goal reached: purchase"),
        )

    def test_the_goal_after_the_attribution_window_ends_it_without_a_conversion(self) -> None:
        document = read(example())
        who = traveller()
        place = place_after(begin(document, who, Facts(T0)))
        late = T0 + timedelta(days=8)
        progress = advance(
            document, who, place, Facts(late, signal=ArrivedSignal("purchase", {}, late))
        )
        assert progress.actions == (Leave("goal reached: purchase"),)

    def test_a_goal_with_a_condition_needs_the_condition(self) -> None:
        document = example()
        document["goal"]["condition"] = {
            "type": "attribute",
            "name": "tier",
            "op": "eq",
            "value": "gold",
        }
        read_back = read(document)
        who = traveller()
        place = place_after(begin(read_back, who, Facts(T0)))
        purchase = ArrivedSignal("purchase", {}, T0)
        silver = Facts(T0, SegmentFacts(attributes={"tier": "silver"}), signal=purchase)
        assert advance(read_back, who, place, silver) == Progress()

    def test_the_goal_alone_as_a_paused_campaign_asks_it_ends_the_journey_as_advance_does(
        self,
    ) -> None:
        document = read(
            journey(
                {
                    "a-day-later": {"type": "wait", "for": "1d", "next": "welcome"},
                    "welcome": send(),
                },
                goal={"signal": "purchase", "within": "7d"},
            )
        )
        bought = Facts(T0 + timedelta(hours=1), signal=ArrivedSignal("purchase", event_id="p-1"))
        reached = reach_goal(document, T0, bought)
        assert reached.actions == (
            Conversion("purchase", "p-1", T0 + timedelta(hours=1)),
            Leave("goal reached: purchase"),
        )
        place = place_after(begin(document, traveller(), Facts(T0)))
        assert advance(document, traveller(), place, bought) == reached
        viewed = Facts(T0, signal=ArrivedSignal("page.viewed"))
        assert reach_goal(document, T0, viewed) == Progress()


class TestADispatchCarriesTheStep:
    def test_its_send_is_the_steps_own(self) -> None:
        document = read(journey({"welcome": send(priority=5)}))
        [dispatch] = begin(document, traveller(), Facts(T0)).dispatches
        assert isinstance(dispatch, Dispatch)
        assert dispatch.send.priority == 5
