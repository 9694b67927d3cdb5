"""FMA adapter on a tiny fake tracks.csv (three header rows) and the fma_small / fma_medium audio layout."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from musicssl.data_prep.datasets import build_manifest, fma

HEADER = [
    ["", "album", "set", "set", "track", "track"],
    ["", "title", "split", "subset", "genre_top", "title"],
    ["track_id", "", "", "", "", ""],
]
TRACKS = [
    ["2", "AWOL", "training", "small", "Hip-Hop", "Food"],
    ["5", "Multi\nline, quoted", "validation", "small", "Pop", "This World"],
    ["10", "", "test", "medium", "Rock", "Freeway"],
    ["140", "", "training", "large", "Folk", "Queen"],
    ["141", "", "test", "small", "Folk", "Ohio"],
]


def make_fma(tmp_path: Path) -> tuple[Path, Path]:
    """fma_metadata/tracks.csv and fma_small audio for tracks 2 and 5 (141 absent)."""
    root, meta = tmp_path / "fma_small", tmp_path / "fma_metadata"
    meta.mkdir()
    with (meta / "tracks.csv").open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([*HEADER, *TRACKS])
    for name in ("000/000002.mp3", "000/000005.mp3", "000/000010.mp3"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"ID3")
    return root, meta


def read_manifest(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_fma_small_keeps_small_tracks_with_split_and_genre(tmp_path: Path) -> None:
    root, meta = make_fma(tmp_path)
    summary = build_manifest("fma-small", root, tmp_path / "out", meta)
    rows = read_manifest(summary.manifest)
    assert [(row["track_id"], row["split"], row["tags"]) for row in rows] == [
        ("2", "train", "Hip-Hop"),
        ("5", "valid", "Pop"),
    ]
    assert rows[0]["path"] == str(root / "000" / "000002.mp3")
    assert [(row["track_id"], row["path"]) for row in read_manifest(summary.missing)] == [
        ("141", str(root / "000" / "000141.mp3"))
    ]
    assert summary.vocabulary.read_text().splitlines() == ["Folk", "Hip-Hop", "Pop"]


def test_fma_medium_includes_small_but_not_large(tmp_path: Path) -> None:
    root, meta = make_fma(tmp_path)
    listing = fma.collect(root, meta.parent, size="medium")  # the folder above fma_metadata works too
    assert [(record.track_id, record.split) for record in listing.records] == [
        ("2", "train"),
        ("5", "valid"),
        ("10", "test"),
        ("141", "test"),
    ]


def test_tracks_csv_without_the_set_columns_is_rejected(tmp_path: Path) -> None:
    meta = tmp_path / "fma_metadata"
    meta.mkdir()
    (meta / "tracks.csv").write_text(",track\n,genre_top\ntrack_id,\n2,Rock\n")
    with pytest.raises(ValueError, match="header lacks"):
        fma.collect(tmp_path, meta, size="small")


def test_unknown_size_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="'large'"):
        fma.collect(tmp_path, tmp_path, size="large")
