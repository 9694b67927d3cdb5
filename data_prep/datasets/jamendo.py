"""MTG-Jamendo autotagging subsets (top50tags, instrument, moodtheme, genre) with the published split-0.

ROOT is where the audio was unpacked: PATH entries such as `14/214.mp3` are relative to it; the low-quality
download names the same file `14/214.low.mp3`, and either is accepted. The split files come from the
github.com/MTG/mtg-jamendo-dataset repository, not the audio download: META is a checkout of that repository
or its `data/splits/split-0` folder, holding `autotagging_<subset>-{train,validation,test}.tsv` (tab-separated
TRACK_ID, ARTIST_ID, ALBUM_ID, PATH, DURATION, then one tag per column such as `genre---rock`).
"""

from __future__ import annotations

from pathlib import Path

from musicssl.data_prep.datasets.files import find_file, read_lines
from musicssl.data_prep.datasets.records import DatasetListing, TrackRecord

SUBSETS = ("top50tags", "instrument", "moodtheme", "genre")
SPLIT_FILES = {"train": "train", "valid": "validation", "test": "test"}
HEADER = ("TRACK_ID", "ARTIST_ID", "ALBUM_ID", "PATH", "DURATION")
SPLIT_FOLDERS = (Path("."), Path("data/splits/split-0"), Path("splits/split-0"), Path("split-0"))
HINT = "Clone github.com/MTG/mtg-jamendo-dataset; pass the clone (or its data/splits/split-0) as --meta."


def collect(root: Path, meta: Path, subset: str) -> DatasetListing:
    """List the tracks of one autotagging subset's split-0; the vocabulary is its sorted tag set."""
    if subset not in SUBSETS:
        raise ValueError(f"MTG-Jamendo subset {subset!r} is not one of {SUBSETS}")
    folders = [meta / folder for folder in SPLIT_FOLDERS]
    records = []
    for split, file_split in SPLIT_FILES.items():
        split_file = find_file(f"autotagging_{subset}-{file_split}.tsv", folders, HINT)
        records.extend(read_split(split_file, split, root))
    vocabulary = tuple(sorted({tag for record in records for tag in record.tags}))
    return DatasetListing(records=records, vocabulary=vocabulary)


def read_split(path: Path, split: str, root: Path) -> list[TrackRecord]:
    """One record per row of a split TSV, trying the full-quality then the low-quality audio file."""
    header, *rows = read_lines(path)
    if tuple(header.split("\t")[: len(HEADER)]) != HEADER:
        raise ValueError(f"{path}: header {header!r} does not start with {' '.join(HEADER)}")
    records = []
    for line_number, line in enumerate(rows, start=2):
        fields = line.split("\t")
        if len(fields) < len(HEADER):
            raise ValueError(f"{path}:{line_number}: expected at least {len(HEADER)} tab-separated fields")
        track_id, artist_id, album_id, relative_path, duration, *tags = fields
        records.append(
            TrackRecord(
                track_id=track_id,
                split=split,
                tags=tuple(tags),
                candidates=(root / relative_path, root / low_quality_path(relative_path)),
                extra={"artist_id": artist_id, "album_id": album_id, "duration": duration},
            )
        )
    return records


def low_quality_path(relative_path: str) -> str:
    """`14/214.mp3` -> `14/214.low.mp3`, the name the low-quality (audio-low) download uses."""
    stem, dot, suffix = relative_path.rpartition(".")
    return f"{stem}.low.{suffix}" if dot else f"{relative_path}.low"
