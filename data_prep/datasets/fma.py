"""FMA small / medium genre classification with the dataset's own split (github.com/mdeff/fma).

META is the `fma_metadata` folder (or its parent) holding `tracks.csv`, whose three header rows name
(top-level, column) pairs: `set/split` (training, validation, test), `set/subset` (small, medium, large: the
smallest subset a track belongs to, so medium includes small) and `track/genre_top`, the single tag.
ROOT is the unpacked `fma_small` / `fma_medium` folder (or its parent), audio at `000/000002.mp3`.
"""

from __future__ import annotations

import csv
from pathlib import Path

from musicssl.data_prep.datasets.files import find_file
from musicssl.data_prep.datasets.records import DatasetListing, TrackRecord

SIZES = ("small", "medium")
SPLIT_NAMES = {"training": "train", "validation": "valid", "test": "test"}
COLUMNS = {"split": ("set", "split"), "subset": ("set", "subset"), "genre": ("track", "genre_top")}
HINT = "Get fma_metadata.zip (github.com/mdeff/fma), unpack it; pass its fma_metadata folder as --meta."


def collect(root: Path, meta: Path, size: str) -> DatasetListing:
    """List the tracks of FMA `size` (small or medium) with their top genre and published split."""
    if size not in SIZES:
        raise ValueError(f"FMA size {size!r} is not one of {SIZES}")
    included = set(SIZES[: SIZES.index(size) + 1])
    tracks_file = find_file("tracks.csv", [meta, meta / "fma_metadata"], HINT)
    records = []
    for track_id, split, subset, genre in read_tracks(tracks_file):
        if subset not in included:
            continue
        if split not in SPLIT_NAMES:
            raise ValueError(f"{tracks_file}: track {track_id} has split {split!r}, not one of {list(SPLIT_NAMES)}")
        name = f"{int(track_id):06d}"
        relative = Path(name[:3]) / f"{name}.mp3"
        records.append(
            TrackRecord(
                track_id=track_id,
                split=SPLIT_NAMES[split],
                tags=(genre,) if genre else (),
                candidates=(root / relative, root / f"fma_{size}" / relative),
            )
        )
    vocabulary = tuple(sorted({tag for record in records for tag in record.tags}))
    return DatasetListing(records=records, vocabulary=vocabulary)


def read_tracks(path: Path) -> list[tuple[str, str, str, str]]:
    """(track_id, split, subset, genre_top) of every row of tracks.csv, found through its 2-level header."""
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        top, column, id_row = next(reader, []), next(reader, []), next(reader, [])
        if not id_row or id_row[0] != "track_id":
            raise ValueError(f"{path}: expected FMA's three header rows, the third starting with 'track_id'")
        pairs = list(zip(top, column, strict=False))
        try:
            split_at, subset_at, genre_at = (pairs.index(pair) for pair in COLUMNS.values())
        except ValueError as error:
            raise ValueError(f"{path}: header lacks one of the columns {list(COLUMNS.values())}") from error
        return [(row[0], row[split_at], row[subset_at], row[genre_at]) for row in reader if row]
