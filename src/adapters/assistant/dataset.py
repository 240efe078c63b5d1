"""Banking77, the labelled customer messages the intent model learns from."""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ATTRIBUTION", "DEFAULT_DATASET_DIR", "Examples", "load_examples"]

DEFAULT_DATASET_DIR = Path(__file__).resolve().parents[3] / "data" / "banking77"
ATTRIBUTION = (
    "Trained on Banking77 (PolyAI task-specific-datasets), from 'Efficient Intent Detection "
    "with Dual Sentence Encoders', Casanueva et al., NLP for ConvAI workshop, ACL 2020; "
    "licensed CC BY 4.0 (https://creativecommons.org/licenses/by/4.0/)."
)


@dataclass(frozen=True, slots=True)
class Examples:
    """Messages and their intents, with the digest of the file they came from."""

    texts: list[str]
    intents: list[str]
    sha256: str

    def __len__(self) -> int:
        return len(self.texts)


def load_examples(path: Path) -> Examples:
    """Reads a `text,category` CSV."""
    raw = path.read_bytes()
    rows = list(csv.DictReader(raw.decode("utf-8").splitlines()))
    return Examples(
        texts=[row["text"] for row in rows],
        intents=[row["category"] for row in rows],
        sha256=hashlib.sha256(raw).hexdigest(),
    )
