"""Same-track pairs per batch: random access from its epoch plan, the stream simulated on track-visit ids."""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass

import numpy as np
import webdataset as wds

from benchmarks.loader.common import (
    MB,
    RATE,
    Args,
)
from musicssl.sharding.read.config import PairsConfig
from musicssl.sharding.read.epoch_plan import EpochPlan, TrackOrder


@dataclass
class Composition:
    """Stream batch composition for one (pairs_per_track, pair_shuffle), simulated on track-visit ids."""

    pairs_per_track: int
    pair_shuffle: int
    buffer_mb_per_worker: float
    same_track_pairs_per_batch: float


@dataclass
class PlanComposition:
    """Random-access batch composition from the epoch plan: item pairs of a batch that share a track."""

    catalogue_tracks: int
    pairs_per_track: int
    batches: int
    same_track_pairs_per_batch: float
    stream_simulated: float  # the stream at the same pairs_per_track, simulated
    stream_pair_shuffle: int


def plan_same_track_pairs(num_tracks: int, pairs_per_track: int, batch_size: int, batches: int) -> float:
    """Mean item pairs of a random-access batch (rank 0 of 1) that share a track, over `batches` batches."""
    plan = EpochPlan(num_tracks, pairs_per_track, batch_size, 1, seed=0)
    order = TrackOrder(plan)
    total = 0
    for number in range(batches):
        epoch, batch = divmod(number, plan.batches_per_epoch)
        counts = np.unique(order.tracks(plan.positions(epoch, batch, 0)), return_counts=True)[1]
        total += int((counts * (counts - 1) // 2).sum())
    return total / batches


def same_track_pairs_per_batch(pairs_per_track: int, pair_shuffle: int, batch_size: int, batches: int = 200) -> float:
    """Mean number of item pairs in a stream batch cut from the same track visit, simulated on visit ids."""
    visits = (visit for visit in itertools.count() for _ in range(pairs_per_track))
    stream = wds.shuffle(pair_shuffle, pair_shuffle, rng=random.Random(0))(visits)
    for _ in range(pair_shuffle * 2):  # reach the steady state
        next(stream)
    total = 0
    for _ in range(batches):
        counts = np.unique(list(itertools.islice(stream, batch_size)), return_counts=True)[1]
        total += int((counts * (counts - 1) // 2).sum())
    return total / batches


def composition_grid(args: Args) -> list[Composition]:
    """Stream: same-track pairs per batch for every pairs_per_track x pair_shuffle, with the buffer's memory."""
    pair_bytes = 2 * 2 * PairsConfig().crop_length(RATE)
    return [
        Composition(count, size, size * pair_bytes / MB, same_track_pairs_per_batch(count, size, args.batch_size))
        for count in args.pairs_per_track
        for size in args.composition_buffers
    ]


def plan_compositions(args: Args) -> list[PlanComposition]:
    """Random access from the plan, for the large catalogue and the bench set, beside the stream's figure."""
    return [
        PlanComposition(
            tracks,
            count,
            args.plan_batches,
            plan_same_track_pairs(tracks, count, args.batch_size, args.plan_batches),
            same_track_pairs_per_batch(count, args.pair_shuffle, args.batch_size),
            args.pair_shuffle,
        )
        for tracks in (args.plan_catalogue, args.tracks)
        for count in args.plan_pairs_per_track
    ]


def print_composition(batch_size: int, plan: list[PlanComposition], stream: list[Composition]) -> None:
    """Same-track pairs per batch: random access from its plan, the stream simulated."""
    print(f"\nsame-track item pairs per batch of {batch_size} (world size 1)")
    for item in plan:
        print(
            f"  random access, {item.catalogue_tracks:6,d} tracks, ppt {item.pairs_per_track:2d}: "
            f"{item.same_track_pairs_per_batch:8.2f} (plan, {item.batches} batches); "
            f"stream {item.stream_simulated:6.1f} (simulated, pair_shuffle {item.stream_pair_shuffle})"
        )
    print("stream: pair_shuffle buffer (its memory per worker) -> same-track pairs per batch")
    for c in stream:
        print(
            f"  ppt {c.pairs_per_track:3d}  pair_shuffle {c.pair_shuffle:6d} ({c.buffer_mb_per_worker:5.0f} MB)"
            f"  {c.same_track_pairs_per_batch:7.1f}"
        )
