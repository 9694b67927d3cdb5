"""A tiny fake MagnaTagATune copy in the published layout (annotations_final.csv + split .npy), shared by the MTAT
adapter and published-splits tests."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from musicssl.data_prep.datasets import mtat

CLIPS = {  # mp3_path: (clip_id, tags set to 1)
    "f/artist-album-01-song-0-29.mp3": ("2", {"guitar", "rock", "not top50"}),
    "f/artist-album-01-song-30-59.mp3": ("6", {"male vocal", "guitar"}),
    "0/other-album-02-piece-0-29.mp3": ("12", {"choral"}),
    "0/other-album-02-piece-30-59.mp3": ("13", {"piano"}),
}
SPLIT = {
    "train": ["f/artist-album-01-song-0-29.mp3", "0/other-album-02-piece-0-29.mp3"],
    "valid": ["f/artist-album-01-song-30-59.mp3"],
    "test": ["0/other-album-02-piece-30-59.mp3"],
}


def write_annotations(path: Path) -> None:
    columns = ["clip_id", *mtat.TOP50_TAGS, "not top50", "mp3_path"]
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, delimiter="\t", quoting=csv.QUOTE_ALL)
        writer.writerow(columns)
        for mp3_path, (clip_id, tags) in CLIPS.items():
            writer.writerow([clip_id, *("1" if tag in tags else "0" for tag in columns[1:-1]), mp3_path])


def make_mtat(tmp_path: Path, tags: list[str] | None = None) -> tuple[Path, Path]:
    """ROOT with annotations and audio (the test clip missing), META with the sota split files."""
    root, meta = tmp_path / "magnatagatune", tmp_path / "split_mtat"
    root.mkdir()
    meta.mkdir()
    write_annotations(root / "annotations_final.csv")
    for mp3_path in list(CLIPS)[:3]:
        (root / mp3_path).parent.mkdir(parents=True, exist_ok=True)
        (root / mp3_path).write_bytes(b"ID3")
    row_of = {mp3_path: row for row, mp3_path in enumerate(CLIPS)}
    for split, paths in SPLIT.items():
        np.save(meta / f"{split}.npy", np.array([f"{row_of[p]}\t{p}" for p in paths]))
    if tags is not None:
        np.save(meta / "tags.npy", np.array(tags))
    return root, meta
