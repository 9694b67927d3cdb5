"""GTZAN with the fault-filtered split of Kereliuk, Sturm and Larsen (github.com/coreyker/dnn-mgr, gtzan/).

META holds `train_filtered.txt`, `valid_filtered.txt` and `test_filtered.txt` (not part of the GTZAN
download; also in minzwon/sota-music-tagging-models split/gtzan), one entry per line such as
`blues/blues.00000.wav`. ROOT is the folder holding the ten genre folders, or its parent with `genres/`
(original .au release) or `genres_original/` (the .wav re-release); `.au` files stand in for `.wav` entries.
The genre (the entry's folder) is the single tag.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from musicssl.data_prep.datasets.files import find_file, read_lines
from musicssl.data_prep.datasets.records import DatasetListing, TrackRecord

SPLIT_FILES = {"train": "train_filtered.txt", "valid": "valid_filtered.txt", "test": "test_filtered.txt"}
AUDIO_FOLDERS = (Path("."), Path("genres"), Path("genres_original"))
HINT = (
    "Download gtzan/{train,valid,test}_filtered.txt from github.com/coreyker/dnn-mgr and pass their folder with --meta."
)


def collect(root: Path, meta: Path) -> DatasetListing:
    """List the GTZAN tracks of the fault-filtered split, each tagged with its genre."""
    records = []
    for split, file_name in SPLIT_FILES.items():
        split_file = find_file(file_name, [meta], HINT)
        for entry in read_lines(split_file):
            relative = PurePosixPath(entry)
            if len(relative.parts) != 2:
                raise ValueError(f"{split_file}: entry {entry!r} is not of the form 'genre/genre.00000.wav'")
            genre = relative.parts[0]
            records.append(
                TrackRecord(
                    track_id=relative.stem,
                    split=split,
                    tags=(genre,),
                    candidates=tuple(
                        root / folder / variant
                        for folder in AUDIO_FOLDERS
                        for variant in (relative, relative.with_suffix(".au"))
                    ),
                )
            )
    vocabulary = tuple(sorted({record.tags[0] for record in records}))
    return DatasetListing(records=records, vocabulary=vocabulary)
