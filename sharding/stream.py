"""Online anchor/positive pairs streamed from a shard set, balanced across ranks and loader workers.

Pipeline per worker: resampled shards -> tar members -> decoded tracks (corrupt ones skipped and counted) ->
track shuffle -> `pairs_per_track` fresh pairs per track visit -> pair shuffle -> (B, 2, S) int16 batches.
Batches stay int16 PCM (half the bytes of float32 to hand over and to copy to the accelerator); the consumer
converts them on its device with `pairs_to_float`.
Shards are drawn with replacement, so every rank yields exactly `batches_per_epoch` batches and DDP never
waits on a rank that ran out of data; seeds depend on (seed, epoch, rank, worker), so runs are reproducible
and no two workers draw the same stream.
"""

from __future__ import annotations

import functools
import logging
import math
import multiprocessing
import os
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import torch
import webdataset as wds

from sharding.format import PCM_SCALE, TrackMeta, decode_track
from sharding.location import load_index, shard_urls, tar_samples

logger = logging.getLogger(__name__)

MAX_FRUITLESS_VISITS = 1000  # consecutive corrupt or too-short tracks before a worker gives up loudly


@dataclass(frozen=True)
class PairStreamConfig:
    """How pairs are cut and batched; the defaults are the paper's (4 s crops, positive 4-16 s away)."""

    crop_seconds: float = 4.0
    crop_samples: int | None = None  # overrides crop_seconds, e.g. 59049 for SampleCNN
    min_gap_seconds: float = 4.0  # start-to-start distance between anchor and positive, either side
    max_gap_seconds: float = 16.0
    pairs_per_track: int = 1  # pairs cut per track visit; the paper cuts one
    batch_size: int = 256
    track_shuffle: int = 16  # tracks held per worker (whole tracks: ~7.7 MB each for 4 min at 16 kHz)
    pair_shuffle: int = 1024  # pairs held per worker (two int16 crops each: 256 KB for 4 s at 16 kHz)
    num_workers: int = 4
    seed: int = 0
    batches_per_epoch: int | None = None  # fixed epoch length (the paper: 512); None: one pass over the set
    start_method: str | None = None  # how workers start: fork, forkserver, spawn; None: Python's default

    def __post_init__(self) -> None:
        if self.crop_samples is None and self.crop_seconds <= 0:
            raise ValueError(f"crop_seconds must be positive, got {self.crop_seconds}")
        if self.crop_samples is not None and self.crop_samples <= 0:
            raise ValueError(f"crop_samples must be positive, got {self.crop_samples}")
        if not 0 <= self.min_gap_seconds <= self.max_gap_seconds:
            raise ValueError(
                f"need 0 <= min_gap_seconds <= max_gap_seconds, got {self.min_gap_seconds} and {self.max_gap_seconds}"
            )
        for name in ("pairs_per_track", "batch_size", "track_shuffle", "pair_shuffle", "batches_per_epoch"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.seed < 0:
            raise ValueError(f"seed must be 0 or more, got {self.seed}")
        if self.num_workers < 0:
            raise ValueError(f"num_workers must be 0 (load in the main process) or more, got {self.num_workers}")

    def crop_length(self, sample_rate: int) -> int:
        """Crop length in samples at the set's sample rate."""
        return self.crop_samples if self.crop_samples is not None else round(self.crop_seconds * sample_rate)

    def gap_bounds(self, sample_rate: int) -> tuple[int, int]:
        """(min, max) start-to-start distance in samples."""
        return math.ceil(self.min_gap_seconds * sample_rate), math.floor(self.max_gap_seconds * sample_rate)


def sample_pair_starts(
    rng: np.random.Generator, num_samples: int, crop: int, min_gap: int, max_gap: int, count: int
) -> np.ndarray:
    """(count, 2) start indices (anchor, positive), all crops inside the track, positive min-max gap away.

    The anchor is uniform over the starts that admit a positive; the positive is uniform over the valid starts
    on either side of it. Raises ValueError for a track shorter than `crop + min_gap`.
    """
    last = num_samples - crop  # last valid start
    if last < min_gap:
        raise ValueError(f"track of {num_samples} samples is too short for a pair ({crop + min_gap} needed)")
    # anchors with a positive: [0, last - min_gap] and [min_gap, last]; skip the hole between them, if any
    left_count = last - min_gap + 1
    hole = max(0, min_gap - left_count)
    draw = rng.integers(0, last + 1 - hole, size=count)
    anchor = draw + hole * (draw >= left_count)
    left_low = np.maximum(0, anchor - max_gap)
    left_size = np.maximum(0, anchor - min_gap - left_low + 1)
    right_size = np.maximum(0, np.minimum(last, anchor + max_gap) - (anchor + min_gap) + 1)
    pick = rng.integers(0, left_size + right_size)
    positive = np.where(pick < left_size, left_low + pick, anchor + min_gap + pick - left_size)
    return np.stack([anchor, positive], axis=1)


@dataclass(frozen=True)
class StreamStats:
    """What the loader's workers have read so far (all workers, all epochs)."""

    tracks: int = 0  # tracks decoded
    bytes: int = 0  # member payload bytes read for them (audio + metadata)
    pairs: int = 0
    corrupt_skipped: int = 0  # tar members or shards that could not be read or decoded
    short_skipped: int = 0  # track visits too short for a pair


STAT_NAMES = tuple(f.name for f in fields(StreamStats))


class SharedCounters:
    """StreamStats counters in shared memory, written by loader workers and read by the main process."""

    def __init__(self, location: str, context: multiprocessing.context.BaseContext) -> None:
        self.location = location
        self._values = context.Array("q", len(STAT_NAMES))  # same context as the workers, or it cannot travel
        self._fruitless = 0  # per process: visits since the last pair

    def add(self, **counts: int) -> None:
        """Add to named counters under one lock."""
        with self._values.get_lock():
            for name, value in counts.items():
                self._values[STAT_NAMES.index(name)] += value

    def snapshot(self) -> StreamStats:
        """The current totals."""
        with self._values.get_lock():
            return StreamStats(*self._values[:])

    def productive(self) -> None:
        """Note that a visit gave pairs."""
        self._fruitless = 0

    def fruitless(self, reason: str) -> None:
        """Note a visit that gave no pair; stop loudly when nothing in the set can give pairs."""
        self._fruitless += 1
        if self._fruitless >= MAX_FRUITLESS_VISITS:
            raise RuntimeError(
                f"{self.location}: {self._fruitless} track visits in a row gave no pair (last: {reason}); "
                "the shards are unreadable or the tracks shorter than crop + min gap; check the set with "
                "`python -m sharding verify` or shorten the crop"
            )

    def skip_corrupt(self, error: Exception) -> bool:
        """webdataset error handler: count and log an unreadable member or shard, then carry on."""
        logger.warning("%s: skipping unreadable data: %s", self.location, error)
        self.add(corrupt_skipped=1)
        self.fruitless(str(error))
        return True


@dataclass
class StreamSeed:
    """Seeds of every random stage, derived from (seed, epoch, rank, worker, stage) inside the worker."""

    seed: int
    rank: int
    epoch: int = 0

    def state(self, stage: int) -> list[int]:
        """Entropy for one stage of the calling worker (worker 0 in the main process)."""
        info = torch.utils.data.get_worker_info()
        worker = 0 if info is None else info.id
        return [self.seed, self.epoch, self.rank, worker, stage]

    def int_seed(self, stage: int) -> int:
        """A 32-bit seed for one stage of the calling worker."""
        return int(np.random.SeedSequence(self.state(stage)).generate_state(1)[0])

    def shard_seed(self) -> int:
        """Seed for ResampledShards (its `worker_seed` hook)."""
        return self.int_seed(0)

    def numpy_rng(self, stage: int) -> np.random.Generator:
        """A numpy generator for one stage of the calling worker."""
        return np.random.default_rng(self.state(stage))

    def python_rng(self, stage: int) -> random.Random:
        """A Python generator (what webdataset's shuffle takes) for one stage of the calling worker."""
        return random.Random(self.int_seed(stage))


class DecodeTracks:
    """Raw tar samples -> (int16 view, TrackMeta); corrupt samples are skipped and counted."""

    def __init__(self, counters: SharedCounters) -> None:
        self.counters = counters

    def __call__(self, samples: Iterable[dict[str, Any]]) -> Iterator[tuple[np.ndarray, TrackMeta]]:
        for sample in samples:
            try:
                pcm, meta = decode_track(sample)
            except ValueError as err:
                self.counters.skip_corrupt(ValueError(f"{sample.get('__url__', '?')}: {err}"))
                continue
            self.counters.add(tracks=1, bytes=pcm.nbytes + len(sample.get("json", b"")))
            yield pcm, meta


class Shuffle:
    """webdataset's shuffle buffer, filled completely, seeded per worker when the pipeline starts."""

    def __init__(self, size: int, seeds: StreamSeed, stage: int) -> None:
        self.size, self.seeds, self.stage = size, seeds, stage

    def __call__(self, items: Iterable[Any]) -> Iterator[Any]:
        return wds.shuffle(self.size, self.size, rng=self.seeds.python_rng(self.stage))(iter(items))


class CutPairs:
    """Each track visit -> `count` fresh (2, crop) int16 pairs, copied out so the track can be freed."""

    def __init__(
        self, crop: int, gaps: tuple[int, int], count: int, seeds: StreamSeed, counters: SharedCounters
    ) -> None:
        self.crop, self.gaps, self.count = crop, gaps, count
        self.seeds, self.counters = seeds, counters

    def __call__(self, tracks: Iterable[tuple[np.ndarray, TrackMeta]]) -> Iterator[np.ndarray]:
        rng = self.seeds.numpy_rng(2)
        min_gap, max_gap = self.gaps
        for pcm, meta in tracks:
            if len(pcm) < self.crop + min_gap:
                self.counters.add(short_skipped=1)
                self.counters.fruitless(f"{meta.track_id} has {len(pcm)} samples")
                continue
            starts = sample_pair_starts(rng, len(pcm), self.crop, min_gap, max_gap, self.count)
            windows = np.lib.stride_tricks.sliding_window_view(pcm, self.crop)
            pairs = windows[starts]  # (count, 2, crop) int16: one gather, one copy
            self.counters.add(pairs=self.count)
            self.counters.productive()
            yield from pairs


class BatchPairs:
    """(2, crop) int16 pairs -> (B, 2, crop) int16 tensors."""

    def __init__(self, batch_size: int) -> None:
        self.batch_size = batch_size

    def __call__(self, pairs: Iterable[np.ndarray]) -> Iterator[torch.Tensor]:
        batch: list[np.ndarray] = []
        for pair in pairs:
            batch.append(pair)
            if len(batch) == self.batch_size:
                yield self.collate(batch)
                batch = []

    @staticmethod
    def collate(batch: list[np.ndarray]) -> torch.Tensor:
        """Stack straight into the output, in shared memory inside a worker so sending it copies nothing."""
        out = torch.empty((len(batch), *batch[0].shape), dtype=torch.int16)
        if torch.utils.data.get_worker_info() is not None:
            out.share_memory_()
        np.stack(batch, out=out.numpy())
        return out


def pairs_to_float(batch: torch.Tensor) -> torch.Tensor:
    """int16 PCM batch -> float32 in [-1, 1), on the batch's device (run it after moving the batch there)."""
    return batch.float().mul_(1.0 / PCM_SCALE)


class PairLoader:
    """Iterable of (B, 2, S) int16 CPU batches (`pairs_to_float` converts them); exactly `batches_per_epoch`
    per iteration on every rank."""

    def __init__(self, location: str | os.PathLike[str], config: PairStreamConfig, rank: int, world_size: int) -> None:
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is outside [0, world_size={world_size})")
        self.location = os.fspath(location)
        self.config = config
        self.rank, self.world_size = rank, world_size
        index = load_index(location)
        self.sample_rate = index.sample_rate
        self.crop_samples = config.crop_length(index.sample_rate)
        self.batches_per_epoch = config.batches_per_epoch or max(
            1, index.total_samples * config.pairs_per_track // (config.batch_size * world_size)
        )
        self.seeds = StreamSeed(config.seed, rank)
        context = multiprocessing.get_context(config.start_method)
        self.counters = SharedCounters(self.location, context)
        self.shards = wds.ResampledShards(
            shard_urls(location, index), worker_seed=self.seeds.shard_seed, deterministic=True
        )
        pipeline = wds.DataPipeline(
            self.shards,
            functools.partial(tar_samples, handler=self.counters.skip_corrupt),
            DecodeTracks(self.counters),
            Shuffle(config.track_shuffle, self.seeds, stage=1),
            CutPairs(
                self.crop_samples,
                config.gap_bounds(index.sample_rate),
                config.pairs_per_track,
                self.seeds,
                self.counters,
            ),
            Shuffle(config.pair_shuffle, self.seeds, stage=3),
            BatchPairs(config.batch_size),
        )
        self.loader = wds.WebLoader(
            pipeline,
            batch_size=None,
            num_workers=config.num_workers,
            persistent_workers=False,
            multiprocessing_context=context if config.num_workers else None,
        ).with_epoch(self.batches_per_epoch)

    @property
    def epoch(self) -> int:
        """The epoch the next iteration streams (it seeds every worker)."""
        return self.seeds.epoch

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch the next iteration streams, e.g. when resuming from a checkpoint."""
        self.seeds.epoch = epoch

    @property
    def stats(self) -> StreamStats:
        """Totals over all workers and epochs so far."""
        return self.counters.snapshot()

    def __len__(self) -> int:
        return self.batches_per_epoch

    def __iter__(self) -> Iterator[torch.Tensor]:
        before = self.stats
        # ResampledShards mixes its own iteration count into its seed, but only in the process that iterates
        # it: reset it so that, with or without workers, the epoch comes from `self.seeds` alone.
        self.shards.epoch = -1
        try:
            yield from self.loader
        finally:
            self.log_skipped(before)
            self.seeds.epoch += 1

    def log_skipped(self, before: StreamStats) -> None:
        """Log what this epoch skipped, so lost data shows in the training log."""
        after = self.stats
        skipped = after.corrupt_skipped - before.corrupt_skipped, after.short_skipped - before.short_skipped
        if any(skipped):
            logger.warning(
                "%s epoch %d rank %d: skipped %d unreadable members and %d tracks too short for a pair "
                "(totals %d and %d)",
                self.location,
                self.epoch,
                self.rank,
                *skipped,
                after.corrupt_skipped,
                after.short_skipped,
            )


def distributed_position() -> tuple[int, int]:
    """(rank, world_size) from torch.distributed when initialised, else RANK/WORLD_SIZE, else (0, 1)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def pair_loader(
    location: str | os.PathLike[str],
    config: PairStreamConfig | None = None,
    rank: int | None = None,
    world_size: int | None = None,
) -> PairLoader:
    """Stream training pairs from the set at `location`; rank and world size default to the launcher's."""
    default_rank, default_world = distributed_position()
    return PairLoader(
        location,
        config or PairStreamConfig(),
        default_rank if rank is None else rank,
        default_world if world_size is None else world_size,
    )
