"""MTG-Jamendo adapter on a tiny fake checkout (split-0 TSVs) and audio in full and low quality."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from musicssl.data_prep.datasets import ADAPTERS, build_manifest, jamendo

HEADER = "TRACK_ID\tARTIST_ID\tALBUM_ID\tPATH\tDURATION\tTAGS"
ROWS = {
    "train": [
        "track_0000214\tartist_000014\talbum_000031\t14/214.mp3\t124.6\tmood/theme---sad\tmood/theme---calm",
        "track_0000215\tartist_000014\talbum_000031\t15/215.mp3\t151.4\tmood/theme---happy",
    ],
    "validation": ["track_0003346\tartist_000517\talbum_000521\t46/3346.mp3\t195.0\tmood/theme---calm"],
    "test": ["track_0000382\tartist_000020\talbum_000046\t82/382.mp3\t211.1\tmood/theme---dark"],
}


def make_jamendo(tmp_path: Path, subset: str = "moodtheme") -> tuple[Path, Path]:
    """Audio root with one full-quality, two low-quality and one absent file; META is a repository clone."""
    root, meta = tmp_path / "audio", tmp_path / "mtg-jamendo-dataset"
    split_dir = meta / "data" / "splits" / "split-0"
    split_dir.mkdir(parents=True)
    for split, rows in ROWS.items():
        text = "\n".join([HEADER, *rows]) + "\n"
        (split_dir / f"autotagging_{subset}-{split}.tsv").write_text(text)
    for relative in ("14/214.mp3", "15/215.low.mp3", "46/3346.low.mp3"):
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_bytes(b"ID3")
    return root, meta


def read_manifest(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_jamendo_manifest_maps_splits_tags_and_low_quality_audio(tmp_path: Path) -> None:
    root, meta = make_jamendo(tmp_path)
    summary = build_manifest("jamendo-moodtheme", root, tmp_path / "out", meta)
    rows = {row["track_id"]: row for row in read_manifest(summary.manifest)}
    assert rows["track_0000214"] == {
        "path": str(root / "14/214.mp3"),
        "track_id": "track_0000214",
        "tags": "mood/theme---calm;mood/theme---sad",
        "split": "train",
        "artist_id": "artist_000014",
        "album_id": "album_000031",
        "duration": "124.6",
    }
    assert rows["track_0000215"]["path"] == str(root / "15/215.low.mp3")
    assert rows["track_0003346"]["split"] == "valid"
    assert summary.tracks_per_split == {"train": 2, "valid": 1}
    missing = read_manifest(summary.missing)
    assert [(row["track_id"], row["path"]) for row in missing] == [("track_0000382", str(root / "82/382.mp3"))]
    assert summary.vocabulary.read_text().splitlines() == [
        "mood/theme---calm",
        "mood/theme---dark",
        "mood/theme---happy",
        "mood/theme---sad",
    ]


def test_split_folder_itself_is_accepted_as_meta(tmp_path: Path) -> None:
    root, meta = make_jamendo(tmp_path, subset="top50tags")
    listing = ADAPTERS["jamendo-top50"].collect(root, meta / "data" / "splits" / "split-0")
    assert len(listing.records) == 4


def test_every_subset_has_an_adapter() -> None:
    assert {name for name in ADAPTERS if name.startswith("jamendo-")} == {
        "jamendo-top50",
        "jamendo-instrument",
        "jamendo-moodtheme",
        "jamendo-genre",
    }


def test_wrong_subset_files_point_to_the_repository(tmp_path: Path) -> None:
    root, meta = make_jamendo(tmp_path, subset="genre")
    with pytest.raises(FileNotFoundError, match=r"autotagging_instrument-train\.tsv.*MTG/mtg-jamendo-dataset"):
        jamendo.collect(root, meta, subset="instrument")


def test_bad_header_is_rejected(tmp_path: Path) -> None:
    root, meta = make_jamendo(tmp_path)
    split_file = meta / "data" / "splits" / "split-0" / "autotagging_moodtheme-test.tsv"
    split_file.write_text("ID\tPATH\n")
    with pytest.raises(ValueError, match=r"autotagging_moodtheme-test\.tsv: header"):
        jamendo.collect(root, meta, subset="moodtheme")


def test_low_quality_path() -> None:
    assert jamendo.low_quality_path("14/214.mp3") == "14/214.low.mp3"
