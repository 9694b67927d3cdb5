"""Writing an adapter's listing as the CSV manifest `python -m data_prep` reads, with missing audio reported.

Output folder: `manifest.csv` (tracks whose audio exists), `missing.csv` (same columns, tracks whose audio
was not found), `tags.txt` (the vocabulary, one tag a line, in the order multi-hot targets use).
"""

from __future__ import annotations

import csv
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from musicssl.data_prep.datasets.records import SPLITS, DatasetListing, TrackRecord

MANIFEST_NAME = "manifest.csv"
MISSING_NAME = "missing.csv"
VOCABULARY_NAME = "tags.txt"
BASE_COLUMNS = ("path", "track_id", "tags", "split")
TAG_SEPARATOR = ";"
MISSING_EXAMPLES = 5

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ManifestSummary:
    """Where the manifest files went and how many tracks landed in each."""

    manifest: Path
    missing: Path
    vocabulary: Path
    tracks_per_split: dict[str, int]
    missing_count: int
    missing_per_split: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Track ids without audio, per split."""
    size_differences: tuple[str, ...] = ()
    """How the tracks per split differ from the published split sizes (empty: as published, or none known)."""

    @property
    def track_count(self) -> int:
        return sum(self.tracks_per_split.values())


def write_manifest(listing: DatasetListing, out_dir: Path) -> ManifestSummary:
    """Write manifest.csv, missing.csv and tags.txt for `listing` in `out_dir`; missing audio is not fatal."""
    check_listing(listing)
    extra_columns = collect_extra_columns(listing.records)
    columns = [*BASE_COLUMNS, *extra_columns]
    found: list[dict[str, str]] = []
    missing: list[dict[str, str]] = []
    for record in listing.records:
        audio = first_existing(record.candidates)
        row = manifest_row(record, audio or record.candidates[0], listing.vocabulary)
        (found if audio else missing).append(row)

    out_dir.mkdir(parents=True, exist_ok=True)
    summary = ManifestSummary(
        manifest=out_dir / MANIFEST_NAME,
        missing=out_dir / MISSING_NAME,
        vocabulary=out_dir / VOCABULARY_NAME,
        tracks_per_split=dict(Counter(row["split"] for row in found)),
        missing_count=len(missing),
        missing_per_split={
            split: tuple(row["track_id"] for row in missing if row["split"] == split)
            for split in dict.fromkeys(row["split"] for row in missing)
        },
    )
    write_rows(summary.manifest, columns, found)
    write_rows(summary.missing, columns, missing)
    summary.vocabulary.write_text("".join(f"{tag}\n" for tag in listing.vocabulary), encoding="utf-8")
    if missing:
        examples = ", ".join(row["path"] for row in missing[:MISSING_EXAMPLES])
        logger.warning(
            "%d of %d tracks have no audio file and are left out of %s; all are listed in %s (e.g. %s)",
            len(missing),
            len(listing.records),
            summary.manifest,
            summary.missing,
            examples,
        )
    return summary


def check_listing(listing: DatasetListing) -> None:
    """Reject listings the manifest reader would misread: duplicate ids or tags, unknown tags, separators."""
    for tag in listing.vocabulary:
        if TAG_SEPARATOR in tag or not tag.strip():
            raise ValueError(f"tag {tag!r} is empty or contains the separator {TAG_SEPARATOR!r}")
    repeated_tags = [tag for tag, count in Counter(listing.vocabulary).items() if count > 1]
    if repeated_tags:
        raise ValueError(f"the vocabulary repeats tags {repeated_tags}")
    repeated_ids = [tid for tid, count in Counter(r.track_id for r in listing.records).items() if count > 1]
    if repeated_ids:
        raise ValueError(
            f"track ids {repeated_ids[:MISSING_EXAMPLES]} appear more than once: each track must be in "
            f"exactly one of the splits {SPLITS}"
        )
    known = set(listing.vocabulary)
    for record in listing.records:
        unknown = sorted(set(record.tags) - known)
        if unknown:
            raise ValueError(f"track {record.track_id!r} has tags {unknown} that are not in the vocabulary")


def collect_extra_columns(records: list[TrackRecord]) -> list[str]:
    """Extra metadata columns in order of first appearance, so the CSV layout is stable run to run."""
    columns = list(dict.fromkeys(key for record in records for key in record.extra))
    clashing = sorted(set(columns) & set(BASE_COLUMNS))
    if clashing:
        raise ValueError(f"extra metadata keys {clashing} clash with the manifest's own columns {BASE_COLUMNS}")
    return columns


def first_existing(candidates: tuple[Path, ...]) -> Path | None:
    """The first candidate that is a file, or None when the audio is nowhere to be found."""
    return next((path for path in candidates if path.is_file()), None)


def manifest_row(record: TrackRecord, audio: Path, vocabulary: tuple[str, ...]) -> dict[str, str]:
    """One manifest row: absolute path (the manifest lives elsewhere), tags in vocabulary order."""
    tags = set(record.tags)
    return {
        "path": str(audio.absolute()),
        "track_id": record.track_id,
        "tags": TAG_SEPARATOR.join(tag for tag in vocabulary if tag in tags),
        "split": record.split,
        **record.extra,
    }


def write_rows(path: Path, columns: list[str], rows: list[dict[str, str]]) -> None:
    """Write rows as CSV with a header, via a temporary file so a crash never leaves half a manifest."""
    partial = path.with_name(path.name + ".partial")
    with partial.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, restval="")
        writer.writeheader()
        writer.writerows(rows)
    partial.replace(path)
