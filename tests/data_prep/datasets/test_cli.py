"""`python -m data_prep.datasets`: end to end on a tiny GTZAN copy, and its errors."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from musicssl.data_prep.datasets import ADAPTERS
from musicssl.data_prep.datasets.__main__ import main
from musicssl.data_prep.entry import run_command


def make_gtzan(root: Path) -> Path:
    """A two-track GTZAN copy with split files in a separate META folder; the test track has no audio."""
    meta = root.parent / "splits"
    meta.mkdir(parents=True)
    (meta / "train_filtered.txt").write_text("pop/pop.00010.wav\n")
    (meta / "valid_filtered.txt").write_text("")
    (meta / "test_filtered.txt").write_text("reggae/reggae.00061.wav\n")
    (root / "pop").mkdir(parents=True)
    (root / "pop" / "pop.00010.wav").write_bytes(b"RIFF")
    return meta


def test_cli_writes_manifest_and_reports_counts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "genres"
    meta = make_gtzan(root)
    out = tmp_path / "out"
    assert main(["gtzan", str(root), "--out", str(out), "--meta", str(meta)]) == 0
    with (out / "manifest.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(row["path"], row["tags"], row["split"]) for row in rows] == [
        (str(root / "pop" / "pop.00010.wav"), "pop", "train")
    ]
    printed = capsys.readouterr().out
    assert "1 tracks (train 1, valid 0, test 0)" in printed
    assert "1 tracks without audio" in printed
    assert (out / "tags.txt").read_text() == "pop\nreggae\n"


def test_cli_unknown_dataset_lists_the_valid_names(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_command(main, ["magna", str(tmp_path), "--out", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err
    assert "unknown dataset 'magna'" in error and all(name in error for name in ADAPTERS)


def test_cli_missing_split_files_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_command(main, ["mtat", str(tmp_path), "--out", str(tmp_path / "out")]) == 2
    assert "annotations_final.csv not found" in capsys.readouterr().err
