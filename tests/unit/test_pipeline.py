from __future__ import annotations

from entrypoints.pipeline import LANES


class TestPipeline:
    def test_each_projection_runs_in_one_lane_only(self) -> None:
        members = [member for lane in LANES for member in lane.members]
        assert len(members) == len(set(members))

    def test_lanes_wake_only_lanes_that_exist_and_follow_them(self) -> None:
        order = [lane.name for lane in LANES]
        for place, lane in enumerate(LANES):
            for woken in lane.wakes:
                assert woken in order[place + 1 :], f"{lane.name} wakes {woken}"

    def test_signals_reach_their_customers_before_anything_reads_them(self) -> None:
        assert LANES[0].name == "attribution"
        assert len(LANES[0].members) == 1

    def test_the_lanes_after_attribution_give_way_to_it_and_to_nothing_after_them(self) -> None:
        order = [lane.name for lane in LANES]
        for place, lane in enumerate(LANES[1:], 1):
            assert "attribution" in lane.gives_way_to
            assert set(lane.gives_way_to) <= set(order[:place])
