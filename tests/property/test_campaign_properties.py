"""Campaigns, for any split and any journey hypothesis finds: the split is deterministic and
shares customers out by weight; a journey is refused for a loop exactly when it has one with no
wait in it, and the interpreter never spins on one it accepts."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid5

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.campaign.journey_reader import JourneyInvalid, decode_journey
from domain.campaign.progress import Facts, Traveller, begin
from domain.campaign.split import arm_of

NOW = datetime(2026, 3, 2, 12, tzinfo=UTC)
NAMESPACE = UUID("5f0c1d2e-3a4b-4c5d-8e6f-7a8b9c0d1e2f")
WAITING = {"wait", "wait_for_signal"}

uuids = st.uuids()
weights = st.lists(st.integers(min_value=0, max_value=20), min_size=1, max_size=5).filter(
    lambda ws: sum(ws) > 0
)


def named(ws: list[int]) -> list[tuple[str, int]]:
    return [(f"arm-{i}", w) for i, w in enumerate(ws)]


class TestTheSplit:
    @given(weights, uuids, st.integers(min_value=1, max_value=50), uuids)
    def test_the_same_customer_and_version_land_in_the_same_arm(
        self, ws: list[int], campaign: UUID, version: int, customer: UUID
    ) -> None:
        arms = named(ws)
        first = arm_of(arms, campaign, version, "ab", customer)
        assert arm_of(arms, campaign, version, "ab", customer) == first
        assert dict(arms)[first] > 0

    @settings(max_examples=25, deadline=None)
    @given(weights, uuids, st.integers(min_value=1, max_value=50))
    def test_customers_are_shared_out_by_weight(
        self, ws: list[int], campaign: UUID, version: int
    ) -> None:
        arms = named(ws)
        customers = 4000
        counts = Counter(
            arm_of(arms, campaign, version, "ab", uuid5(NAMESPACE, str(i)))
            for i in range(customers)
        )
        total = sum(ws)
        for name, weight in arms:
            assert abs(counts[name] / customers - weight / total) < 0.04


@st.composite
def step_graphs(draw: st.DrawFn) -> dict[str, Any]:
    """Journeys of up to 7 steps, every step reachable in a chain, with random extra exits."""
    size = draw(st.integers(min_value=1, max_value=7))
    ids = [f"s{i}" for i in range(size)]
    targets = st.sampled_from(ids)
    steps: dict[str, Any] = {}
    for i, step_id in enumerate(ids):
        onward = ids[i + 1] if i + 1 < size else draw(targets)
        kind = draw(
            st.sampled_from(["update", "wait", "branch", "wait_for_signal", "send", "exit"])
        )
        if kind == "exit" and i + 1 < size:
            kind = "update"
        if kind == "update":
            steps[step_id] = {"type": "update", "attributes": {"seen": i}, "next": onward}
        elif kind == "send":
            steps[step_id] = {
                "type": "send",
                "channels": ["email"],
                "template": "t",
                "purpose": "marketing",
                "team": "growth",
                "next": onward,
            }
        elif kind == "wait":
            steps[step_id] = {"type": "wait", "for": "1h", "next": onward}
        elif kind == "wait_for_signal":
            steps[step_id] = {
                "type": "wait_for_signal",
                "signal": "x",
                "timeout": "1d",
                "on_signal": draw(targets),
                "on_timeout": onward,
            }
        elif kind == "branch":
            case = {"in_segment": "vip", "next": draw(targets)}
            steps[step_id] = {"type": "branch", "cases": [case], "else": onward}
        else:
            steps[step_id] = {"type": "exit"}
    return {"entry": {"type": "api"}, "start": "s0", "steps": steps}


def exits(step: dict[str, Any]) -> list[str]:
    found = [step.get(name) for name in ("next", "else", "on_signal", "on_timeout")]
    found += [case["next"] for case in step.get("cases", ())]
    return [target for target in found if target is not None]


def has_a_loop_without_a_wait(document: dict[str, Any]) -> bool:
    """Brute force: from each step that does not wait, can the steps that do not wait lead back?"""
    steps = document["steps"]
    for first, step in steps.items():
        if step["type"] in WAITING:
            continue
        todo, seen = exits(step), set()
        while todo:
            at = todo.pop()
            if at == first:
                return True
            if at in seen or steps[at]["type"] in WAITING:
                continue
            seen.add(at)
            todo.extend(exits(steps[at]))
    return False


class TestLoops:
    @settings(max_examples=300)
    @given(step_graphs())
    def test_a_journey_is_refused_for_a_loop_exactly_when_one_has_no_wait(
        self, document: dict[str, Any]
    ) -> None:
        try:
            decode_journey(document, templates={"t"}, segments={"vip"})
            loop_refused = False
        except JourneyInvalid as refused:
            loop_refused = any("loop with no wait" in f.reason for f in refused.faults)
        assert loop_refused == has_a_loop_without_a_wait(document)

    @settings(max_examples=300)
    @given(step_graphs(), uuids, st.booleans())
    def test_the_interpreter_never_spins_on_an_accepted_journey(
        self, document: dict[str, Any], customer: UUID, vip: bool
    ) -> None:
        try:
            journey = decode_journey(document, templates={"t"}, segments={"vip"})
        except JourneyInvalid:
            return
        who = Traveller(NAMESPACE, 1, customer, customer)
        facts = Facts(NOW, segments=frozenset({"vip"} if vip else ()))
        progress = begin(journey, who, facts)
        assert progress.timer is not None or progress.left is not None
