"""A/B/n assignment: which arm of a split a customer takes, the same every time.

The arm comes from a hash of the campaign, its version, the split step and the customer, cut
into the arms' weights: the same customer re-entering the same version lands in the same arm,
and a new version draws afresh.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence
    from uuid import UUID

__all__ = ["arm_of", "draw"]

_SCALE = 2**64


def draw(campaign_id: UUID, version: int, step: str, customer_id: UUID) -> float:
    """A number in [0, 1), uniform over customers, fixed for these four."""
    seed = f"{campaign_id}:{version}:{step}:{customer_id}".encode()
    digest = hashlib.blake2b(seed, digest_size=8).digest()
    return int.from_bytes(digest, "big") / _SCALE


def arm_of(
    weights: Sequence[tuple[str, int]],
    campaign_id: UUID,
    version: int,
    step: str,
    customer_id: UUID,
) -> str:
    """The arm whose share of the weights the customer's draw falls in; arms of weight 0 never."""
    total = sum(weight for _, weight in weights)
    if total <= 0 or any(weight < 0 for _, weight in weights):
        raise ValueError(f"weights must be whole numbers ≥ 0 adding up to more than 0: {weights}")
    point = int(draw(campaign_id, version, step, customer_id) * total)
    for name, weight in weights:
        if point < weight:
            return name
        point -= weight
    raise AssertionError("a draw below 1 falls in some arm")  # pragma: no cover
