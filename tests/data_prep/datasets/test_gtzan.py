"""GTZAN adapter on a tiny fake of the fault-filtered split files and both GTZAN releases' layouts."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from musicssl.data_prep.datasets import build_manifest, gtzan

SPLITS = {
    "train": ["blues/blues.00000.wav", "rock/rock.00038.wav"],
    "valid": ["jazz/jazz.00002.wav"],
    "test": ["metal/metal.00001.wav"],
}


def make_gtzan(tmp_path: Path, audio_folder: str, suffix: str) -> Path:
    """Split files in ROOT itself, audio under ROOT/`audio_folder` with `suffix`, metal.00001 absent."""
    root = tmp_path / "gtzan"
    root.mkdir()
    for split, entries in SPLITS.items():
        (root / f"{split}_filtered.txt").write_text("\r\n".join(entries) + "\r\n")
    for entry in ("blues/blues.00000", "rock/rock.00038", "jazz/jazz.00002"):
        path = root / audio_folder / f"{entry}{suffix}"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"RIFF")
    return root


def read_manifest(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.parametrize(("audio_folder", "suffix"), [("genres_original", ".wav"), ("genres", ".au"), (".", ".wav")])
def test_gtzan_manifest_tags_each_track_with_its_genre(tmp_path: Path, audio_folder: str, suffix: str) -> None:
    root = make_gtzan(tmp_path, audio_folder, suffix)
    summary = build_manifest("gtzan", root, tmp_path / "out")
    rows = read_manifest(summary.manifest)
    assert [(row["track_id"], row["split"], row["tags"]) for row in rows] == [
        ("blues.00000", "train", "blues"),
        ("rock.00038", "train", "rock"),
        ("jazz.00002", "valid", "jazz"),
    ]
    assert rows[0]["path"] == str(root / audio_folder / f"blues/blues.00000{suffix}")
    assert [row["track_id"] for row in read_manifest(summary.missing)] == ["metal.00001"]
    assert summary.vocabulary.read_text().splitlines() == ["blues", "jazz", "metal", "rock"]


def test_malformed_entry_is_named(tmp_path: Path) -> None:
    root = make_gtzan(tmp_path, "genres_original", ".wav")
    (root / "test_filtered.txt").write_text("metal.00001.wav\n")
    with pytest.raises(ValueError, match=r"test_filtered\.txt: entry 'metal\.00001\.wav'"):
        gtzan.collect(root, root)


def test_missing_split_files_point_to_dnn_mgr(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="coreyker/dnn-mgr"):
        gtzan.collect(tmp_path, tmp_path)
