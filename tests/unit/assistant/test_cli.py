from __future__ import annotations

import csv
import json
import subprocess
import sys
from typing import TYPE_CHECKING

from tests.unit.assistant.test_linear_classifier import tiny_examples

if TYPE_CHECKING:
    from pathlib import Path


def _write(path: Path, rows: list[tuple[str, str]]) -> None:
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["text", "category"])
        writer.writerows(rows)


def _chorus(*args: str) -> str:
    # A child process: the commands pin themselves to one core, which must not outlive them.
    command = [sys.executable, "-m", "entrypoints.cli", "assistant", *args]
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout


class TestTheAssistantCommands:
    def test_train_writes_the_model_with_the_datas_attribution_then_evaluate_prints_figures(
        self, tmp_path: Path
    ) -> None:
        examples = tiny_examples()
        dataset = tmp_path / "dataset"
        dataset.mkdir()
        _write(dataset / "train.csv", list(zip(examples.texts, examples.intents, strict=True)))
        _write(dataset / "test.csv", [("my card was stolen", "lost_or_stolen_card")])
        where = ["--data-dir", str(tmp_path / "data"), "--dataset", str(dataset)]

        trained = _chorus("train", *where)
        metadata = json.loads((tmp_path / "data/assistant/intent-model.json").read_text())
        evaluated = _chorus("evaluate", *where)

        assert "on 24 messages" in trained
        assert "CC BY 4.0" in metadata["attribution"]
        assert metadata["train_examples"] == 24
        for figure in ("accuracy", "macro_f1", "p50_ms", "p99_ms", "messages_per_s", "rss_mb"):
            assert figure in evaluated
