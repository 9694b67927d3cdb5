"""The split sizes the ICASSP 2024 paper reports (Table 1, in configs/references.toml), checked against a manifest.

A reproduction probes on the paper's splits only if the manifest holds as many tracks per split as Table 1.
A difference has two possible causes, both reported: the split files list another number of tracks (another
version of the split), or some listed tracks have no audio (named here, all of them in missing.csv).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from musicssl.data_prep.datasets.records import SPLITS
from musicssl.data_prep.entry import config_dir

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

REFERENCES_FILE = config_dir() / "references.toml"
MISSING_NAMED = 20
"""Missing tracks named per split in a report; missing.csv lists them all."""


@dataclass(frozen=True)
class PublishedSplits:
    """Tracks per split of one dataset as a study reports them, and where."""

    source: str
    sizes: dict[str, int]


def published_splits(path: Path = REFERENCES_FILE) -> dict[str, PublishedSplits]:
    """The [splits.<adapter name>] tables of the references file."""
    with path.open("rb") as handle:
        tables = tomllib.load(handle).get("splits", {})
    return {
        name: PublishedSplits(
            source=f"{table['source']['document']} Table {table['source']['table']}, row {table['source']['row']}",
            sizes={split: int(table[split]) for split in SPLITS},
        )
        for name, table in tables.items()
    }


def split_size_differences(
    published: PublishedSplits, found: Mapping[str, int], missing: Mapping[str, Sequence[str]]
) -> list[str]:
    """One sentence per split whose manifest count (``found``) differs from the published one, saying how many
    tracks the split files listed and naming those without audio (``missing``: track ids per split)."""
    differences = []
    for split in SPLITS:
        expected, produced = published.sizes[split], found.get(split, 0)
        if produced == expected:
            continue
        absent = list(missing.get(split, ()))
        listed = produced + len(absent)
        parts = [f"{split}: {produced:,} tracks in the manifest, {expected:,} in {published.source}"]
        if listed != expected:
            direction = "more" if listed > expected else "fewer"
            parts.append(
                f"the split files list {listed:,} ({abs(listed - expected):,} {direction} than published: "
                "another version of the split?)"
            )
        if absent:
            named = ", ".join(absent[:MISSING_NAMED]) + (", ..." if len(absent) > MISSING_NAMED else "")
            parts.append(f"{len(absent):,} listed tracks have no audio: {named} (all in missing.csv)")
        differences.append("; ".join(parts))
    return differences
