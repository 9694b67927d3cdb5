"""What a dataset adapter produces: one record per track of a published split, and the tag vocabulary."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

SPLITS = ("train", "valid", "test")


@dataclass(frozen=True)
class TrackRecord:
    """One track of a dataset's split: where its audio may lie, its id, split, tags and extra metadata."""

    track_id: str
    split: str
    tags: tuple[str, ...]
    candidates: tuple[Path, ...]
    """Places the audio may be, most likely first (e.g. full and low-quality variants); the first that
    exists is written to the manifest, the first one is reported when none exists."""
    extra: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.split not in SPLITS:
            raise ValueError(f"track {self.track_id!r}: split {self.split!r} is not one of {SPLITS}")
        if not self.candidates:
            raise ValueError(f"track {self.track_id!r}: no candidate audio path given")


@dataclass(frozen=True)
class DatasetListing:
    """Every track an adapter found in the published split, with the tag vocabulary in its stable order."""

    records: list[TrackRecord]
    vocabulary: tuple[str, ...]
