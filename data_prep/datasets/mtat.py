"""MagnaTagATune top-50 with the split of minzwon/sota-music-tagging-models (also used by CLMR).

ROOT is the unpacked MTAT download: `annotations_final.csv` (tab-separated, quoted: clip_id, 188 tag columns
of 0/1, mp3_path) and the audio folders `0/ .. f/` (or `mp3/0/ .. mp3/f/`). The split is not part of the
download: get `split/mtat/{train,valid,test}.npy` (and `tags.npy`) from sota-music-tagging-models and pass
their folder as META. Each split entry is "index<TAB>mp3_path"; tags come from annotations_final.csv.
"""

from __future__ import annotations

import csv
from pathlib import Path

from musicssl.data_prep.datasets.files import find_file, load_strings
from musicssl.data_prep.datasets.records import DatasetListing, TrackRecord

ANNOTATIONS_NAME = "annotations_final.csv"
SPLIT_FILES = {"train": "train.npy", "valid": "valid.npy", "test": "test.npy"}
TAGS_NAME = "tags.npy"
SPLIT_HINT = (
    "Get split/mtat/{train,valid,test}.npy and tags.npy from github.com/minzwon/sota-music-tagging-models"
    " and pass their folder with --meta."
)
ANNOTATIONS_HINT = "It comes with the MagnaTagATune download (mirg.city.ac.uk/codeapps/the-magnatagatune-dataset)."
# The column order of sota-music-tagging-models' split/mtat/tags.npy, used when META has no tags.npy.
TOP50_TAGS = (
    "guitar", "classical", "slow", "techno", "strings", "drums", "electronic", "rock", "fast", "piano",
    "ambient", "beat", "violin", "vocal", "synth", "female", "indian", "opera", "male", "singing",
    "vocals", "no vocals", "harpsichord", "loud", "quiet", "flute", "woman", "male vocal", "no vocal", "pop",
    "soft", "sitar", "solo", "man", "classic", "choir", "voice", "new age", "dance", "male voice",
    "female vocal", "beats", "harp", "cello", "no voice", "weird", "country", "female voice", "metal",
    "choral",
)  # fmt: skip


def collect(root: Path, meta: Path) -> DatasetListing:
    """List the MTAT top-50 tracks of the standard train/valid/test split with their tags."""
    annotations = read_annotations(find_file(ANNOTATIONS_NAME, [root, meta], ANNOTATIONS_HINT))
    vocabulary = read_vocabulary(meta)
    missing_columns = [tag for tag in vocabulary if tag not in next(iter(annotations.values()))]
    if missing_columns:
        raise ValueError(f"{ANNOTATIONS_NAME} has no columns for tags {missing_columns}")
    records = []
    for split, file_name in SPLIT_FILES.items():
        split_file = find_file(file_name, [meta], SPLIT_HINT)
        for entry in load_strings(split_file):
            mp3_path = split_entry_path(entry, split_file)
            row = annotations.get(mp3_path)
            if row is None:
                raise ValueError(f"{split_file}: {mp3_path!r} is not an mp3_path of {ANNOTATIONS_NAME}")
            records.append(
                TrackRecord(
                    track_id=row["clip_id"],
                    split=split,
                    tags=tuple(tag for tag in vocabulary if row[tag] == "1"),
                    candidates=(root / mp3_path, root / "mp3" / mp3_path),
                    extra={"mp3_path": mp3_path},
                )
            )
    return DatasetListing(records=records, vocabulary=vocabulary)


def read_annotations(path: Path) -> dict[str, dict[str, str]]:
    """Rows of annotations_final.csv keyed by mp3_path, the key the split files use."""
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    if not rows or not {"clip_id", "mp3_path"} <= set(rows[0]):
        raise ValueError(f"{path}: expected a tab-separated table with clip_id and mp3_path columns")
    return {row["mp3_path"]: row for row in rows}


def read_vocabulary(meta: Path) -> tuple[str, ...]:
    """The tag order of META/tags.npy when given (it fixes the multi-hot columns), else the published one."""
    tags_file = meta / TAGS_NAME
    return tuple(load_strings(tags_file)) if tags_file.is_file() else TOP50_TAGS


def split_entry_path(entry: str, split_file: Path) -> str:
    """The mp3_path of an "index<TAB>mp3_path" split entry."""
    parts = entry.split("\t")
    if len(parts) != 2:
        raise ValueError(f"{split_file}: entry {entry!r} is not of the form 'index<TAB>mp3_path'")
    return parts[1]
