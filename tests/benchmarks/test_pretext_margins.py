"""benchmarks/pretext_margins.py's bookkeeping, without training: which stored results are reused, the summary
per pretext and the plots of the kNN curves and of the paired differences."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import pytest

from benchmarks import pretext_margins
from benchmarks.pretext_margins import Args, SeedMargin


def _margin(seed: int, low: float, curve: list[list[float]], settings: dict[str, str]) -> SeedMargin:
    scores = {metric: 70.0 for metric in pretext_margins.METRICS}
    difference = {metric: {"observed": low + 2, "low": low, "high": low + 4, "p_value": 0.01}
                  for metric in pretext_margins.METRICS}  # fmt: skip
    return SeedMargin("vicreg", seed, settings, 60.0, 55.0, {}, curve, scores, scores, difference)


def test_a_stored_result_is_reused_only_with_the_same_settings(tmp_path: Path) -> None:
    shards = tmp_path / "shards"
    args = Args(data=shards, train_flags="--epochs 54")
    stored = _margin(1, 0.5, [[0, 70.0]], pretext_margins.run_settings(args, shards))
    folder = tmp_path / "vicreg" / "seed-1"
    folder.mkdir(parents=True)
    (folder / pretext_margins.RESULT_NAME).write_text(json.dumps(asdict(stored)))
    assert pretext_margins.finished(args, tmp_path, shards, "vicreg", 1) == stored
    assert pretext_margins.finished(args, tmp_path, shards, "vicreg", 2) is None
    assert pretext_margins.finished(Args(data=shards), tmp_path, shards, "vicreg", 1) is None
    assert pretext_margins.finished(Args(data=shards, preset="paper"), tmp_path, shards, "vicreg", 1) is None


def test_the_table_says_on_how_many_seeds_a_pretext_holds_and_plots_the_shared_steps(tmp_path: Path) -> None:
    margins = [
        _margin(0, 0.5, [[0, 70.0], [75, 72.5], [150, 74.0]], {}),
        _margin(1, -0.5, [[0, 71.0], [75, 71.5]], {}),
    ]
    assert [m.holds for m in margins] == [True, False]
    text = pretext_margins.table(margins)
    assert (
        "vicreg: above random weights on 1 of 2 seeds (mean tag-wise ROC-AUC difference +2.00); precision@10 above on 1"
        in text
    )
    assert "0: 70.0 (+0.0), 75: 72.5 (+2.5), 150: 74.0 (+4.0)" in text
    plot = pretext_margins.plot_knn_curves(margins, tmp_path / "curves.png")
    assert plot is not None and plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert pretext_margins.plot_knn_curves([_margin(0, 0.5, [], {})], tmp_path / "none.png") is None
    differences = pretext_margins.plot_margins(margins, tmp_path / "differences.png")
    assert differences.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_training_runs_once_per_settings_and_other_settings_start_afresh(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A finished training is reused by the next probe; one with other settings loses its checkpoints first (or
    train.py would resume them)."""
    trainings: list[list[str]] = []

    def fake_run(command: list[str], cwd: Path, log: Path) -> float:
        output = Path(command[command.index("--output-dir") + 1])
        assert not (output / "old-checkpoint").exists()
        (output / "old-checkpoint").mkdir(parents=True)
        trainings.append(command)
        return 12.5

    monkeypatch.setattr(pretext_margins, "run_logged", fake_run)
    shards, folder = tmp_path / "shards", tmp_path / "byol" / "seed-0"
    folder.mkdir(parents=True)
    args = Args(data=shards)
    first = pretext_margins.train_once(args, shards, "byol", 0, folder)
    assert pretext_margins.train_once(args, shards, "byol", 0, folder) == first and first[1] == 12.5
    assert len(trainings) == 1
    pretext_margins.train_once(Args(data=shards, train_flags="--epochs 54"), shards, "byol", 0, folder)
    assert len(trainings) == 2 and "54" in trainings[1] and "54" not in trainings[0]
