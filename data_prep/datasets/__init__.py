"""Dataset adapters: turn a local copy of a public tagging/genre dataset into a `data_prep` manifest.

Each adapter reads the dataset in its published layout (ROOT: the audio; META: the split and annotation
files) and lists its tracks with tags and split; `write_manifest` turns that listing into `manifest.csv`,
`missing.csv` and `tags.txt`. `ADAPTERS` maps the names the CLI accepts to adapters.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

from musicssl.data_prep.datasets import fma, gtzan, jamendo, msd, mtat
from musicssl.data_prep.datasets.manifest import ManifestSummary, write_manifest
from musicssl.data_prep.datasets.published import published_splits, split_size_differences
from musicssl.data_prep.datasets.records import SPLITS, DatasetListing, TrackRecord

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DatasetAdapter:
    """A named way to list a dataset's tracks: `collect(root, meta)`, ROOT the audio, META the splits."""

    name: str
    summary: str
    collect: Callable[[Path, Path], DatasetListing]


def _registry(*adapters: DatasetAdapter) -> dict[str, DatasetAdapter]:
    """Index adapters by name, so the CLI and `get_adapter` share one list."""
    return {adapter.name: adapter for adapter in adapters}


ADAPTERS: dict[str, DatasetAdapter] = _registry(
    DatasetAdapter("mtat", "MagnaTagATune top-50, sota-music-tagging-models split", mtat.collect),
    *(
        DatasetAdapter(
            f"jamendo-{subset.removesuffix('tags')}",
            f"MTG-Jamendo autotagging_{subset}, split-0",
            partial(jamendo.collect, subset=subset),
        )
        for subset in jamendo.SUBSETS
    ),
    DatasetAdapter("msd100", "Million Song Dataset, 100 tags, tag-based-music-retrieval split", msd.collect),
    DatasetAdapter("gtzan", "GTZAN genres, fault-filtered split", gtzan.collect),
    *(
        DatasetAdapter(f"fma-{size}", f"FMA {size}, top genre, published split", partial(fma.collect, size=size))
        for size in fma.SIZES
    ),
)


def get_adapter(name: str) -> DatasetAdapter:
    """The adapter called `name`, or an error listing the valid names."""
    try:
        return ADAPTERS[name]
    except KeyError:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(ADAPTERS)}") from None


def build_manifest(name: str, root: Path, out_dir: Path, meta: Path | None = None) -> ManifestSummary:
    """List dataset `name` from ROOT (audio) and META (split files, default ROOT) and write its manifest;
    where a study published the split sizes, the summary says how the manifest differs (also logged)."""
    listing = get_adapter(name).collect(root, meta or root)
    summary = write_manifest(listing, out_dir)
    published = published_splits().get(name)
    if published is None:
        return summary
    differences = split_size_differences(published, summary.tracks_per_split, summary.missing_per_split)
    for difference in differences:
        logger.warning("%s: %s", name, difference)
    return replace(summary, size_differences=tuple(differences))


__all__ = [
    "ADAPTERS",
    "SPLITS",
    "DatasetAdapter",
    "DatasetListing",
    "ManifestSummary",
    "TrackRecord",
    "build_manifest",
    "get_adapter",
    "write_manifest",
]
