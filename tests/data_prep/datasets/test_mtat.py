"""MagnaTagATune adapter on a tiny fake copy in the published layout (annotations_final.csv + split .npy)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from musicssl.data_prep.datasets import build_manifest, mtat
from tests.support.mtat_factory import CLIPS, make_mtat


def read_manifest(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_mtat_manifest_has_split_tags_and_missing_clip(tmp_path: Path) -> None:
    root, meta = make_mtat(tmp_path)
    summary = build_manifest("mtat", root, tmp_path / "out", meta)
    rows = {row["track_id"]: row for row in read_manifest(summary.manifest)}
    assert set(rows) == {"2", "6", "12"}
    assert rows["2"] == {
        "path": str(root / "f/artist-album-01-song-0-29.mp3"),
        "track_id": "2",
        "tags": "guitar;rock",
        "split": "train",
        "mp3_path": "f/artist-album-01-song-0-29.mp3",
    }
    assert rows["6"]["split"] == "valid" and rows["6"]["tags"] == "guitar;male vocal"
    assert rows["12"]["tags"] == "choral"
    assert [row["track_id"] for row in read_manifest(summary.missing)] == ["13"]
    assert summary.vocabulary.read_text().splitlines() == list(mtat.TOP50_TAGS)


def test_tags_npy_sets_vocabulary_and_order(tmp_path: Path) -> None:
    root, meta = make_mtat(tmp_path, tags=["rock", "piano", "guitar"])
    summary = build_manifest("mtat", root, tmp_path / "out", meta)
    rows = {row["track_id"]: row["tags"] for row in read_manifest(summary.manifest)}
    assert rows == {"2": "rock;guitar", "6": "guitar", "12": ""}
    assert summary.vocabulary.read_text() == "rock\npiano\nguitar\n"


def test_audio_under_mp3_folder_is_found(tmp_path: Path) -> None:
    root, meta = make_mtat(tmp_path)
    (root / "mp3").mkdir()
    for folder in ("f", "0"):
        (root / folder).rename(root / "mp3" / folder)
    rows = read_manifest(build_manifest("mtat", root, tmp_path / "out", meta).manifest)
    assert {row["path"] for row in rows} == {str(root / "mp3" / p) for p in list(CLIPS)[:3]}


def test_split_entry_absent_from_annotations_is_named(tmp_path: Path) -> None:
    root, meta = make_mtat(tmp_path)
    np.save(meta / "test.npy", np.array(["99\tz/unknown.mp3"]))
    with pytest.raises(ValueError, match=r"test\.npy.*z/unknown\.mp3"):
        mtat.collect(root, meta)


def test_missing_split_files_point_to_their_source(tmp_path: Path) -> None:
    root, _ = make_mtat(tmp_path)
    with pytest.raises(FileNotFoundError, match="sota-music-tagging-models"):
        mtat.collect(root, tmp_path / "nowhere")
