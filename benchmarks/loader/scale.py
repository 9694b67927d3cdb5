"""Scale, simulated: loading the track table of a large index and slicing one epoch for many ranks x workers."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
import psutil
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from benchmarks.harness import timed
from benchmarks.loader.common import (
    MB,
    RATE,
    Args,
)
from musicssl.sharding.format import SHARD_PATTERN, TRACKS_NAME, ShardIndex, ShardInfo
from musicssl.sharding.layout import PCM_LAYOUT
from musicssl.sharding.read.config import PairsConfig
from musicssl.sharding.read.epoch_plan import EpochPlan, TrackOrder
from musicssl.sharding.read.random_access import pair_tracks
from musicssl.sharding.tracks import SCHEMA, SHARDS_KEY, load_track_table

T = TypeVar("T")


@dataclass
class Scale:
    """Track table load and epoch slicing for a simulated large index (no audio)."""

    tracks: int
    shards: int
    table_mb: float
    write_s: float
    load_s: float
    load_peak_mb: float  # peak RSS growth while loading and selecting
    arrays_mb: float  # the table columns a loader worker keeps
    permutation_s: float
    slices_s: float  # every (rank, worker) slice of one epoch
    ranks: int
    workers: int
    disjoint: bool
    rank_items: tuple[int, int]  # (min, max) items per rank
    worker_batches: tuple[int, int]  # (min, max) batches per (rank, worker) slice


def with_peak_rss(run: Callable[[], T]) -> tuple[T, float, float]:
    """(result, seconds, peak RSS growth in MB) of a call; the peak is VmHWM after resetting it (clear_refs)."""
    Path("/proc/self/clear_refs").write_text("5")
    before = psutil.Process().memory_info().rss
    result, seconds = timed(run)
    status = Path("/proc/self/status").read_text().splitlines()
    peak = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmHWM"))
    return result, seconds, (peak - before) / MB


def scale_table(directory: Path, tracks: int, shards: int) -> ShardIndex:
    """Write a track table of `tracks` random 3-5 minute tracks in `shards` shards (index only, no audio)."""
    rng = np.random.default_rng(0)
    per_shard = tracks // shards
    num_samples = rng.integers(180 * RATE, 300 * RATE, size=(shards, per_shard))
    member_bytes = 1536 + (2 * num_samples + 511) // 512 * 512  # json header + json + pcm header, padded pcm
    ends = np.cumsum(member_bytes, axis=1)
    payload_offset = ends - member_bytes + 1536
    ids = pc.binary_join_element_wise("track", pc.cast(pa.array(np.arange(shards * per_shard)), pa.string()), "")
    split = pa.DictionaryArray.from_arrays(
        pa.array(rng.choice(3, size=shards * per_shard, p=[0.8, 0.1, 0.1]).astype(np.int16)),
        pa.array(["train", "valid", "test"]),
    )
    shard = np.repeat(np.arange(shards, dtype=np.int32), per_shard)
    columns = [pa.array(shard), pa.array(payload_offset.ravel()), pa.array(num_samples.ravel()), ids, split]
    infos = [
        ShardInfo(
            SHARD_PATTERN % n, per_shard, float(num_samples[n].sum() / RATE), int(ends[n, -1] + 1024), f"{n:064x}"
        )
        for n in range(shards)
    ]
    metadata = json.dumps([[info.name, info.sha256, info.samples] for info in infos]).encode()
    table = pa.Table.from_arrays(columns, schema=SCHEMA).replace_schema_metadata({SHARDS_KEY: metadata})
    pq.write_table(table, directory / TRACKS_NAME, compression="zstd")
    return ShardIndex(sample_rate=RATE, normalisation="none", shards=infos)


def selected_columns(directory: Path, index: ShardIndex) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What a random-access reader keeps of the table: the columns of the usable training tracks."""
    table = load_track_table(directory, index)
    usable = pair_tracks(table, PairsConfig(), RATE, PCM_LAYOUT)[1]
    return table.shard[usable], table.payload_offset[usable], table.num_samples[usable]


def epoch_slices(plan: EpochPlan, workers: int) -> list[np.ndarray]:
    """The tracks every (rank, worker) reads in epoch 0, rank-major."""
    order = TrackOrder(plan)
    slices = []
    for rank, worker in itertools.product(range(plan.world_size), range(workers)):
        batches = plan.worker_batches(0, worker, workers)
        positions = np.concatenate([plan.positions(0, batch, rank) for batch in batches])
        slices.append(order.tracks(positions))
    return slices


def bench_scale(args: Args, workdir: Path) -> Scale:
    """Load a simulated large track table and cut one epoch into every (rank, worker) slice."""
    directory = workdir / "scale"
    directory.mkdir()
    index, write_s = timed(lambda: scale_table(directory, args.scale_tracks, args.scale_shards))
    columns, load_s, load_peak = with_peak_rss(lambda: selected_columns(directory, index))
    plan = EpochPlan(len(columns[0]), 1, args.batch_size, args.scale_ranks, seed=0)
    permutation_s = timed(lambda: plan.permutation(0))[1]
    slices, slices_s = timed(lambda: epoch_slices(plan, args.scale_workers))
    everything = np.concatenate(slices)
    rank_items = [sum(map(len, slices[r : r + args.scale_workers])) for r in range(0, len(slices), args.scale_workers)]
    worker_batches = [len(s) // args.batch_size for s in slices]
    return Scale(
        tracks=args.scale_tracks,
        shards=args.scale_shards,
        table_mb=(directory / TRACKS_NAME).stat().st_size / MB,
        write_s=write_s,
        load_s=load_s,
        load_peak_mb=load_peak,
        arrays_mb=sum(column.nbytes for column in columns) / MB,
        permutation_s=permutation_s,
        slices_s=slices_s,
        ranks=args.scale_ranks,
        workers=args.scale_workers,
        disjoint=len(np.unique(everything)) == len(everything),
        rank_items=(min(rank_items), max(rank_items)),
        worker_batches=(min(worker_batches), max(worker_batches)),
    )


def print_scale(s: Scale | None) -> None:
    """The simulated large index."""
    assert s is not None
    print(f"\nscale, simulated: {s.tracks:,} tracks in {s.shards:,} shards (index only)")
    print(
        f"  track table {s.table_mb:.0f} MB written in {s.write_s:.1f} s; load + split selection {s.load_s:.2f} s, "
        f"peak RSS +{s.load_peak_mb:.0f} MB; columns kept per worker {s.arrays_mb:.0f} MB"
    )
    print(
        f"  epoch permutation {s.permutation_s:.2f} s; all {s.ranks} ranks x {s.workers} workers slices "
        f"{s.slices_s:.2f} s; disjoint: {'ok' if s.disjoint else 'NO'}; items per rank {s.rank_items[0]:,}-"
        f"{s.rank_items[1]:,}; batches per worker slice {s.worker_batches[0]}-{s.worker_batches[1]}"
    )
