"""MSD100 adapter on a tiny fake of the tag-based-music-retrieval split files and tolerant audio layouts."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from musicssl.data_prep.datasets import build_manifest, msd

TAGS = ["chill", "jazz", "pop", "rock"]
BINARIES = np.array([[0, 0, 1, 1], [1, 1, 0, 0], [0, 0, 0, 1], [0, 1, 0, 0]], dtype=np.float64)
SPLITS = {
    "train": ["0//TRABCDE128F0001", "3//TRXYZAB128F0002"],
    "valid": ["1//TRQQQQQ128F0003"],
    "test": ["2//TRMISSI128F0004"],
}


def make_msd(tmp_path: Path) -> tuple[Path, Path]:
    """Audio in A/B/C layout, flat with a .clip.mp3 name, nested oddly, and one track absent."""
    root, meta = tmp_path / "msd_audio", tmp_path / "msd100"
    meta.mkdir()
    np.save(meta / "tags.npy", np.array(TAGS))
    np.save(meta / "binaries.npy", BINARIES)
    for split, entries in SPLITS.items():
        np.save(meta / f"{split}_ids.npy", np.array(entries))
    for relative in ("A/B/C/TRABCDE128F0001.mp3", "TRXYZAB128F0002.clip.mp3", "deep/er/TRQQQQQ128F0003.wav"):
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_bytes(b"\x00")
    (root / "notes.txt").write_text("not audio")
    return root, meta


def read_manifest(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_msd_manifest_tags_from_binaries_row_and_audio_found_by_id(tmp_path: Path) -> None:
    root, meta = make_msd(tmp_path)
    summary = build_manifest("msd100", root, tmp_path / "out", meta)
    rows = {row["track_id"]: row for row in read_manifest(summary.manifest)}
    assert {track: (row["split"], row["tags"], row["path"]) for track, row in rows.items()} == {
        "TRABCDE128F0001": ("train", "pop;rock", str(root / "A/B/C/TRABCDE128F0001.mp3")),
        "TRXYZAB128F0002": ("train", "jazz", str(root / "TRXYZAB128F0002.clip.mp3")),
        "TRQQQQQ128F0003": ("valid", "chill;jazz", str(root / "deep/er/TRQQQQQ128F0003.wav")),
    }
    missing = read_manifest(summary.missing)
    assert [(row["track_id"], row["path"], row["tags"]) for row in missing] == [
        ("TRMISSI128F0004", str(root / "M/I/S/TRMISSI128F0004.mp3"), "rock")
    ]
    assert summary.vocabulary.read_text().splitlines() == TAGS


def test_binaries_not_matching_tags_are_rejected(tmp_path: Path) -> None:
    root, meta = make_msd(tmp_path)
    np.save(meta / "binaries.npy", BINARIES[:, :3])
    with pytest.raises(ValueError, match=r"binaries\.npy.*4 tags"):
        msd.collect(root, meta)


@pytest.mark.parametrize("entry", ["TRABCDE128F0001", "x//TRABCDE128F0001", "9//TRABCDE128F0001"])
def test_malformed_split_entries_are_named(tmp_path: Path, entry: str) -> None:
    root, meta = make_msd(tmp_path)
    np.save(meta / "test_ids.npy", np.array([entry]))
    with pytest.raises(ValueError, match=rf"test_ids\.npy: entry '{entry}'"):
        msd.collect(root, meta)


def test_missing_audio_root_is_reported(tmp_path: Path) -> None:
    _, meta = make_msd(tmp_path)
    with pytest.raises(FileNotFoundError, match="not a folder"):
        msd.collect(tmp_path / "absent", meta)
