"""Cold page cache (shards evicted with posix_fadvise before every batch) against warm."""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks.harness import timed
from benchmarks.loader.common import (
    MB,
    Args,
    open_reader,
    time_first,
)
from musicssl.sharding.read.reader import PairReader


@dataclass
class CacheRow:
    """A reader with the shards in the page cache or evicted before every batch (in this process)."""

    reader: str
    cache: str
    first_batch_s: float
    pairs_per_s: float


@dataclass
class Eviction:
    """Whether posix_fadvise eviction works here: page-cache residency and a sequential read, cold and warm."""

    resident_share_after: float | None  # of the shard bytes, from fincore (None: fincore not installed)
    cold_read_mb_s: float
    warm_read_mb_s: float


def shard_files(shards: Path) -> list[Path]:
    """The tar files of the bench set."""
    return sorted(shards.glob("*.tar"))


def evict(paths: list[Path]) -> None:
    """Drop the files' pages from the page cache (written back first: dirty pages cannot be dropped)."""
    for path in paths:
        descriptor = os.open(path, os.O_RDONLY)
        try:
            os.fsync(descriptor)
            os.posix_fadvise(descriptor, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(descriptor)


def resident_share(paths: list[Path]) -> float | None:
    """Share of the files' bytes in the page cache, from util-linux fincore; None where it is not installed."""
    if shutil.which("fincore") is None:
        return None
    command = ["fincore", "--bytes", "--noheadings", "--raw", "--output", "RES,SIZE", *map(str, paths)]
    lines = subprocess.run(command, capture_output=True, text=True, check=True).stdout.split("\n")
    resident, size = np.array([line.split() for line in lines if line.strip()], dtype=np.int64).sum(axis=0)
    return float(resident / size)


def read_mb_s(path: Path) -> float:
    """Sequential read speed of a whole file in MB/s, 1 MB at a time."""

    def read_all() -> None:
        with path.open("rb", buffering=0) as stream:
            while stream.read(MB):
                pass

    return path.stat().st_size / MB / timed(read_all)[1]


def eviction_check(files: list[Path]) -> Eviction:
    """Residency right after evicting, and a sequential read of one shard after evicting it and again warm."""
    evict(files)
    share = resident_share(files)
    evict(files[:1])
    cold = read_mb_s(files[0])
    return Eviction(share, cold, read_mb_s(files[0]))


def cache_row(loader: PairReader, reader: str, files: list[Path], batches: int, cold: bool) -> CacheRow:
    """Pairs/s over `batches` batches in this process, evicting the shards before each one when `cold`."""
    iterator = iter(loader)
    if cold:
        evict(files)
    batch, first = time_first(iterator)
    seconds = 0.0
    for _ in range(batches):
        if cold:
            evict(files)
        seconds += time_first(iterator)[1]
    iterator.close()
    return CacheRow(reader, "cold" if cold else "warm", first, batches * len(batch) / seconds)


def cache_rows(shards: Path, args: Args) -> list[CacheRow]:
    """Both readers at 1 pair per track, warm and cold."""
    files = shard_files(shards)
    rows = []
    for reader, cold in itertools.product(("random access", "stream"), (False, True)):
        loader = open_reader(reader, shards, args.batch_size, num_workers=0, pair_shuffle=args.pair_shuffle)
        rows.append(cache_row(loader, reader, files, args.cold_batches, cold))
    return rows


def print_cache(eviction: Eviction | None, rows: list[CacheRow]) -> None:
    """Cold against warm page cache."""
    assert eviction is not None
    share = "fincore not installed" if eviction.resident_share_after is None else f"{eviction.resident_share_after:.1%}"
    print("\npage cache: shards evicted with posix_fadvise(DONTNEED) before every batch (cold) or not (warm)")
    print(
        f"  after eviction {share} of the shard bytes stay resident; sequential read of a shard: "
        f"{eviction.cold_read_mb_s:,.0f} MB/s cold, {eviction.warm_read_mb_s:,.0f} MB/s warm"
    )
    for row in rows:
        print(f"  {row.reader:14} {row.cache}: {row.pairs_per_s:9,.0f} pairs/s, first batch {row.first_batch_s:.2f} s")
