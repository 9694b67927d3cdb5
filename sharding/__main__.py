"""`python -m sharding {verify,inspect,index,repair,stream,merge,convert} LOCATION`: check, describe, index, repair,
read, merge sets, and convert a PCM set to the log-mel layout."""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal

import tyro

from musicssl.data_prep.levels import Normalisation
from musicssl.data_prep.locks import exclusive_folder
from musicssl.data_prep.subcommands import run_subcommand
from musicssl.sharding.convert import convert_set
from musicssl.sharding.layout import Layout
from musicssl.sharding.mel import MelSettings
from musicssl.sharding.merge import merge_parts
from musicssl.sharding.read.chooser import open_pairs
from musicssl.sharding.read.config import PairsConfig
from musicssl.sharding.read.random_access import RandomAccessReader
from musicssl.sharding.recover import repair_set
from musicssl.sharding.shard_set import ShardSet
from musicssl.sharding.stats import TOP_TAGS, inspect_set
from musicssl.sharding.tracks import build_track_table
from musicssl.sharding.verify import verify_set

Location = Annotated[str, tyro.conf.Positional, tyro.conf.arg(metavar="LOCATION")]


@dataclass
class Verify:
    """Re-read every indexed shard: checksums, counts, decoding, the track table's offsets."""

    location: Location

    def run(self) -> int:
        """Exit 1 and name every broken shard/member, else 0."""
        index, problems = verify_set(ShardSet.open(self.location), progress=True)
        for problem in problems:
            print(f"BROKEN {problem}", file=sys.stderr)
        if problems:
            print(f"{len(problems)} problem(s) in {self.location}; rebuild the named shards", file=sys.stderr)
            return 1
        print(f"ok: {len(index.shards)} shards, {index.num_tracks} tracks verified")
        return 0


@dataclass
class Inspect:
    """Shards, tracks, hours, durations, tags, splits."""

    location: Location
    top_tags: int = TOP_TAGS
    """How many of the commonest tags to list."""

    def run(self) -> int:
        print("\n".join(inspect_set(ShardSet.open(self.location), progress=True).lines(self.top_tags)))
        return 0


@dataclass
class Index:
    """Write tracks.parquet (every track's byte offsets, for random access) for a local set; only shards the
    existing table does not cover are scanned."""

    location: Location

    def run(self) -> int:
        with exclusive_folder(Path(self.location), f"python -m sharding index {self.location}"):
            path = build_track_table(self.location, progress=True)
        print(f"wrote {path}")
        return 0


@dataclass
class Repair:
    """Rebuild index.json, report.csv's ok rows and tracks.parquet of a local set from its shards; a shard verify
    names as broken is rewritten without its unreadable tracks, which are listed."""

    location: Location
    normalise: Normalisation | None = None
    """The normalisation the set was prepared with; needed only when index.json is lost or damaged."""

    def run(self) -> int:
        print("\n".join(repair_set(Path(self.location), self.normalise).lines()))
        return 0


@dataclass
class Stream:
    """Read a few batches of anchor/positive pairs with the reader the set allows; print what they cost."""

    location: Location
    batches: int = 3
    batch_size: int = 8
    """Pairs per batch."""
    seed: int = 0
    pairs: PairsConfig = field(default_factory=lambda: PairsConfig(num_workers=min(4, os.cpu_count() or 1)))

    def run(self) -> int:
        shards = ShardSet.open(self.location)
        loader = open_pairs(shards, self.pairs, self.batch_size, 0, 1, self.seed, self.batches)
        reader = "random access" if isinstance(loader, RandomAccessReader) else "sequential stream"
        print(
            f"{self.location}: {reader}, {loader.sample_rate} Hz, crops of {loader.crop_samples} samples, "
            f"{self.pairs.pairs_per_track} pair(s) per track, {self.pairs.num_workers} loader worker(s)"
        )
        pairs, first, started = 0, 0.0, time.perf_counter()
        for number, batch in enumerate(loader, start=1):
            first = first or time.perf_counter() - started
            pairs += len(batch)
            low, high = (value.item() for value in shards.index.layout.to_model_input(batch).aminmax())
            print(f"batch {number}: shape {tuple(batch.shape)} {batch.dtype}, values in [{low:.3f}, {high:.3f}]")
        seconds = time.perf_counter() - started
        stats = loader.stats
        print(f"delivered {pairs} pairs in {seconds:.2f} s, the first after {first:.2f} s (start-up)")
        print(
            f"read {stats.pairs} pairs from {stats.tracks} track reads: {stats.pairs / seconds:.1f} pairs/s, "
            f"{stats.bytes / 1e6:.1f} MB read, {stats.bytes / max(stats.pairs, 1) / 1e3:.1f} kB per pair"
        )
        print(f"skipped {stats.corrupt_skipped} failed read(s), {stats.short_skipped} track(s) too short for a pair")
        return 0


@dataclass
class Merge:
    """Index the part-NNN sets of slurm/data_prep_array.sh as one set (index, report and track table)."""

    location: Location

    def run(self) -> int:
        print("\n".join(merge_parts(self.location).lines()))
        return 0


@dataclass
class Convert:
    """Write the log-mel layout of a PCM set into a new folder, shard by shard, without decoding again; rerun the
    same command to resume after a kill."""

    location: Location
    out: Path
    """The new set's folder."""
    mel_encoding: Literal["uint8", "fp16"] = "uint8"
    """uint8 (0.5 dB steps from -100 dB, 16 KB a 4 s crop) or fp16 (32 KB a crop)."""
    mel_f_max: float | None = None
    """The mel upper frequency in Hz, the ResNet's --resnet.f-max (default: Nyquist)."""
    progress: bool = True

    def run(self) -> int:
        source = ShardSet.open(self.location)
        layout = Layout.logmel(self.mel_encoding, MelSettings(sample_rate=source.sample_rate, f_max=self.mel_f_max))
        print("\n".join(convert_set(source, self.out, layout, self.progress).lines()))
        return 0


COMMANDS = {
    "verify": Verify,
    "inspect": Inspect,
    "index": Index,
    "repair": Repair,
    "stream": Stream,
    "merge": Merge,
    "convert": Convert,
}


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and run the chosen subcommand; 2 for a set that cannot be read at all."""
    return run_subcommand(COMMANDS, argv, "python -m sharding")


if __name__ == "__main__":
    sys.exit(main())
