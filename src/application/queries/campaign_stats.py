"""A campaign's stats: its figures per step and per variant, and each arm against the control.

The intervals come from statsmodels: Wilson's for each conversion rate, Newcombe's (hybrid
score) for the difference between an arm's rate and its split's control group's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from application.campaigns.stored import streams_named
from domain.campaign.journey import CONTROL
from domain.campaign.stats import JOURNEY
from domain.shared.errors import NotFound

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from ports.campaign_stats import CampaignStatsReadModel, Counter
    from ports.campaigns import CampaignDetail, CampaignReadModel

__all__ = [
    "CONFIDENCE",
    "ArmComparison",
    "CampaignStats",
    "CampaignStatsQueries",
    "Figures",
    "Rate",
    "SplitComparison",
    "StepStats",
    "VariantFigures",
    "compare",
    "rate_of",
    "splits_of",
]

CONFIDENCE = 0.95
_COUNTS = ("entered", "waiting", "sent", "deferred", "delivered", "opened", "clicked", "replied")
_COUNTS_AFTER = ("failed", "converted")


@dataclass(slots=True)
class Figures:
    """The counts of one step (or the whole journey) for one variant."""

    entered: int = 0
    waiting: int = 0
    sent: int = 0
    suppressed: int = 0
    suppressed_by_reason: dict[str, int] = field(default_factory=dict)
    deferred: int = 0
    delivered: int = 0
    opened: int = 0
    clicked: int = 0
    replied: int = 0
    failed: int = 0
    converted: int = 0
    cost: dict[str, str] = field(default_factory=dict)  # currency -> amount

    def add(self, figure: str, detail: str, value: Decimal) -> None:
        if figure == "suppressed":
            self.suppressed += int(value)
            self.suppressed_by_reason[detail] = int(value)
        elif figure == "cost":
            self.cost[detail] = str(value)
        elif figure in _COUNTS or figure in _COUNTS_AFTER:
            setattr(self, figure, int(value))


@dataclass(frozen=True, slots=True)
class VariantFigures:
    """A variant's figures: `split` and `arm` are None for every enrollment."""

    split: str | None
    arm: str | None
    figures: Figures


@dataclass(frozen=True, slots=True)
class StepStats:
    step: str
    variants: list[VariantFigures]


@dataclass(frozen=True, slots=True)
class Rate:
    """Conversions out of enrollments, and the rate's Wilson interval; `reason` says why there
    is no rate (nobody drawn into the group yet)."""

    enrollments: int
    converted: int
    rate: float | None
    low: float | None
    high: float | None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class ArmComparison:
    """An arm's conversion rate, and its difference from the control group's with Newcombe's
    interval; None where the control group or the arm has no enrollments."""

    arm: str
    conversion: Rate
    difference: float | None
    difference_low: float | None
    difference_high: float | None
    reason: str | None = None  # why there is no difference


@dataclass(frozen=True, slots=True)
class SplitComparison:
    """Each arm of a split against its control group (None when the split has none).

    `reached` is how many times the split was taken, `drawn` how many enrollments were drawn
    into its arms and control group: the same, but for an enrollment that took the split again
    (it stays in the arm it was drawn into)."""

    split: str
    reached: int
    drawn: int
    control: Rate | None
    arms: list[ArmComparison]
    control_reason: str | None = None  # why `control` is None


@dataclass(frozen=True, slots=True)
class CampaignStats:
    campaign_id: str
    key: str
    confidence: float
    journey: list[VariantFigures]
    steps: list[StepStats]
    comparisons: list[SplitComparison]


_NOBODY_IN_ARM = "nobody has been drawn into this arm yet"
_NOBODY_IN_CONTROL = "nobody has been drawn into the control group yet"
_NO_CONTROL = "the split has no control group"


_DIGITS = 12
"""Bounds are given to 12 decimals: statsmodels' floating-point noise (a Wilson lower bound of
0 computed as 2.8e-17, an upper bound of 1 as 0.9999999999999999) is not shown as a value."""


def _bound(value: Any, low: float, high: float) -> float:
    """An interval's bound within [low, high], without floating-point noise."""
    return min(high, max(low, round(float(value), _DIGITS))) + 0.0  # + 0.0: no -0.0


def rate_of(
    converted: int, enrollments: int, confidence: float = CONFIDENCE, *, group: str = "this arm"
) -> Rate:
    """The conversion rate with its Wilson score interval; none, with the reason, for a group
    nobody has been drawn into."""
    if enrollments <= 0:
        reason = f"nobody has been drawn into {group} yet"
        return Rate(enrollments, converted, None, None, None, reason)
    # Imported when asked: statsmodels brings scipy.stats, a second of every process's start.
    from statsmodels.stats.proportion import proportion_confint

    low, high = proportion_confint(converted, enrollments, alpha=1 - confidence, method="wilson")
    rate = converted / enrollments
    return Rate(enrollments, converted, rate, _bound(low, 0.0, 1.0), _bound(high, 0.0, 1.0))


def compare(arm: str, tried: Rate, control: Rate | None, confidence: float) -> ArmComparison:
    """The arm's rate minus the control's, with Newcombe's interval for the difference."""
    if control is None or control.rate is None or tried.rate is None:
        reason = (
            _NO_CONTROL
            if control is None
            else _NOBODY_IN_CONTROL
            if control.rate is None
            else _NOBODY_IN_ARM
        )
        return ArmComparison(arm, tried, None, None, None, reason)
    from statsmodels.stats.proportion import confint_proportions_2indep

    low, high = confint_proportions_2indep(
        tried.converted,
        tried.enrollments,
        control.converted,
        control.enrollments,
        method="newcomb",
        compare="diff",
        alpha=1 - confidence,
    )
    return ArmComparison(
        arm, tried, tried.rate - control.rate, _bound(low, -1.0, 1.0), _bound(high, -1.0, 1.0)
    )


def _variants(counters: Iterable[Counter]) -> dict[str, dict[tuple[str, str], Figures]]:
    steps: dict[str, dict[tuple[str, str], Figures]] = {}
    for counter in counters:
        variant = (counter.split, counter.arm)
        figures = steps.setdefault(counter.step, {}).setdefault(variant, Figures())
        figures.add(counter.figure, counter.detail, counter.value)
    return steps


def _listed(variants: dict[tuple[str, str], Figures]) -> list[VariantFigures]:
    return [
        VariantFigures(split or None, arm or None, figures)
        for (split, arm), figures in sorted(variants.items())
    ]


def steps_of(journey: Mapping[str, Any]) -> list[str]:
    """The step ids of a journey document."""
    steps = journey.get("steps")
    return [str(step) for step in steps] if isinstance(steps, dict) else []


def splits_of(journey: Mapping[str, Any]) -> dict[str, tuple[list[str], bool]]:
    """Each split step of a journey document: its arms' names, and whether it holds a control
    group out."""
    steps = journey.get("steps")
    found: dict[str, tuple[list[str], bool]] = {}
    for step_id, step in (steps if isinstance(steps, dict) else {}).items():
        if isinstance(step, dict) and step.get("type") == "split":
            arms = [str(arm["name"]) for arm in step.get("arms", ()) if isinstance(arm, dict)]
            found[step_id] = (arms, step.get("control") is not None)
    return found


def _comparisons(
    journey: dict[tuple[str, str], Figures],
    steps: dict[str, dict[tuple[str, str], Figures]],
    splits: dict[str, tuple[list[str], bool]],
    confidence: float,
) -> list[SplitComparison]:
    """Each split of the journey in force, and each split of an earlier version someone was
    drawn in: every arm, drawn into or not, against the control group."""
    drawn: dict[str, dict[str, Figures]] = {}
    for (split, arm), figures in journey.items():
        if split:
            drawn.setdefault(split, {})[arm] = figures
    found = []
    for split in sorted(set(splits) | set(drawn)):
        arms, held_out = splits.get(split, ([], False))
        groups = drawn.get(split, {})
        names = [*arms, *sorted(arm for arm in groups if arm not in arms and arm != CONTROL)]
        has_control = held_out or CONTROL in groups
        control = None
        if has_control:
            counted = groups.get(CONTROL, Figures())
            control = rate_of(
                counted.converted, counted.entered, confidence, group="the control group"
            )
        compared = []
        for arm in names:
            counted = groups.get(arm, Figures())
            rate = rate_of(counted.converted, counted.entered, confidence)
            compared.append(compare(arm, rate, control, confidence))
        reached = steps.get(split, {}).get(("", ""), Figures()).entered
        total = sum(figures.entered for figures in groups.values())
        found.append(
            SplitComparison(
                split,
                reached,
                total,
                control,
                compared,
                None if has_control else _NO_CONTROL,
            )
        )
    return found


class CampaignStatsQueries:
    """Reads the stats projection of a campaign named by key or id."""

    def __init__(self, campaigns: CampaignReadModel, stats: CampaignStatsReadModel) -> None:
        self.campaigns = campaigns
        self.stats = stats

    async def _detail(self, ref: str) -> CampaignDetail:
        for stream in streams_named(ref):
            found = await self.campaigns.detail(stream)
            if found is not None:
                return found
        raise NotFound(f"no campaign {ref!r}")

    async def get(self, ref: str, confidence: float = CONFIDENCE) -> CampaignStats:
        """The campaign's figures; raises NotFound if there is no such campaign."""
        detail = await self._detail(ref)
        summary = detail.summary
        steps = _variants(await self.stats.counters(summary.campaign_id))
        journey = steps.pop(JOURNEY, {})
        for step in steps_of(detail.journey):  # a step nobody has taken yet shows its zeros
            steps.setdefault(step, {}).setdefault(("", ""), Figures())
        journey.setdefault(("", ""), Figures())  # so do the journey and an arm nobody drew
        for split, (arms, held_out) in splits_of(detail.journey).items():
            for arm in [*arms, CONTROL] if held_out else arms:
                journey.setdefault((split, arm), Figures())
        return CampaignStats(
            str(summary.campaign_id),
            summary.key,
            confidence,
            _listed(journey),
            [StepStats(step, _listed(variants)) for step, variants in sorted(steps.items())],
            _comparisons(journey, steps, splits_of(detail.journey), confidence),
        )
