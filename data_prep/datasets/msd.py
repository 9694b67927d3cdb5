"""MSD100: the Million Song Dataset subset with 100 cleaned tags and the artist-disjoint split of Won et al.,
"Multimodal Metric Learning for Tag-based Music Retrieval" (github.com/minzwon/tag-based-music-retrieval).

META holds the MSD100 files of that repository's `reproducible_splits.tar.gz`: `{train,valid,test}_ids.npy`
(entries "row//TRACK_ID"), `binaries.npy` (one 0/1 row of 100 tags per track) and `tags.npy` (the tag names,
in the binaries' column order). ROOT holds the audio, found by MSD track id anywhere below it: the usual
`A/B/C/TRABC...mp3` layout, a flat folder, or any nesting, with any common audio extension
(`TRABC....clip.mp3` too: the id is the file name up to its first dot).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from musicssl.data_prep.datasets.files import find_file, load_strings
from musicssl.data_prep.datasets.records import DatasetListing, TrackRecord

SPLIT_FILES = {"train": "train_ids.npy", "valid": "valid_ids.npy", "test": "test_ids.npy"}
AUDIO_EXTENSIONS = frozenset({".mp3", ".wav", ".flac", ".ogg", ".m4a", ".aac", ".au", ".aiff"})
HINT = (
    "Download reproducible_splits.tar.gz (linked from github.com/minzwon/tag-based-music-retrieval), unpack "
    "it and pass the folder holding the MSD100 train_ids.npy, binaries.npy and tags.npy with --meta."
)


def collect(root: Path, meta: Path) -> DatasetListing:
    """List the MSD100 tracks of the published split with their tags, locating audio by track id."""
    vocabulary = tuple(load_strings(find_file("tags.npy", [meta], HINT)))
    binaries_file = find_file("binaries.npy", [meta], HINT)
    binaries = np.load(binaries_file, mmap_mode="r", allow_pickle=False)
    if binaries.ndim != 2 or binaries.shape[1] != len(vocabulary):
        raise ValueError(
            f"{binaries_file}: shape {binaries.shape} does not match the {len(vocabulary)} tags of tags.npy"
        )
    audio_by_id = index_audio(root)
    records = []
    for split, file_name in SPLIT_FILES.items():
        split_file = find_file(file_name, [meta], HINT)
        for entry in load_strings(split_file):
            row, track_id = parse_entry(entry, split_file, len(binaries))
            expected = root / track_id[2] / track_id[3] / track_id[4] / f"{track_id}.mp3"
            records.append(
                TrackRecord(
                    track_id=track_id,
                    split=split,
                    tags=tuple(tag for tag, on in zip(vocabulary, binaries[row], strict=True) if on),
                    candidates=(audio_by_id.get(track_id, expected),),
                )
            )
    return DatasetListing(records=records, vocabulary=vocabulary)


def parse_entry(entry: str, split_file: Path, row_count: int) -> tuple[int, str]:
    """Split "row//TRACK_ID" into the binaries row and the track id, checking both."""
    row_text, separator, track_id = entry.partition("//")
    if not separator or not row_text.isdigit() or len(track_id) < 5:
        raise ValueError(f"{split_file}: entry {entry!r} is not of the form 'row//TRACK_ID'")
    if int(row_text) >= row_count:
        raise ValueError(f"{split_file}: entry {entry!r} points past the {row_count} rows of binaries.npy")
    return int(row_text), track_id


def index_audio(root: Path) -> dict[str, Path]:
    """Map track id (file name up to its first dot) to audio file for every audio file below `root`."""
    if not root.is_dir():
        raise FileNotFoundError(f"audio root {root} is not a folder; pass the folder holding the MSD audio")
    found: dict[str, Path] = {}
    for folder, _, names in os.walk(root):
        for name in names:
            if Path(name).suffix.lower() in AUDIO_EXTENSIONS:
                found.setdefault(name.split(".", 1)[0], Path(folder) / name)
    return found
