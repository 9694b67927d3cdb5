"""`python -m data_prep.datasets NAME ROOT --out DIR [--meta DIR]`: write a dataset's data_prep manifest."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import tyro

from musicssl.data_prep.datasets import ADAPTERS, SPLITS, build_manifest
from musicssl.data_prep.entry import run_command


@dataclass(frozen=True)
class Arguments:
    """Write manifest.csv, missing.csv and tags.txt for a local copy of a public dataset."""

    name: Annotated[str, tyro.conf.Positional, tyro.conf.arg(metavar="NAME")]
    """Dataset adapter (see the list above)."""
    root: Annotated[Path, tyro.conf.Positional, tyro.conf.arg(metavar="ROOT")]
    """Folder holding the dataset's audio in its published layout."""
    out: Path
    """Folder to write manifest.csv, missing.csv and tags.txt into."""
    meta: Annotated[Path | None, tyro.conf.arg(metavar="DIR")] = None
    """Folder holding the split / annotation files; ROOT when not given."""


def describe_adapters() -> str:
    """The CLI description: one line per adapter."""
    lines = [f"  {name:<20} {adapter.summary}" for name, adapter in ADAPTERS.items()]
    return "Write a data_prep manifest for a local copy of a public dataset. Datasets:\n" + "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments, write the manifest and print what went where."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    arguments = tyro.cli(Arguments, args=argv, description=describe_adapters())
    summary = build_manifest(arguments.name, arguments.root, arguments.out, arguments.meta)
    counts = ", ".join(f"{split} {summary.tracks_per_split.get(split, 0)}" for split in SPLITS)
    print(f"{summary.manifest}: {summary.track_count} tracks ({counts})")
    print(f"{summary.missing}: {summary.missing_count} tracks without audio")
    for difference in summary.size_differences:
        print(f"differs from the published split: {difference}")
    print(f"{summary.vocabulary}: tag vocabulary")
    print(f"next: python -m data_prep {summary.manifest} --out SHARDS_DIR")
    return 0


def cli() -> int:
    """The console script `musicssl-datasets` (pyproject.toml)."""
    return run_command(main)


if __name__ == "__main__":
    raise SystemExit(cli())
