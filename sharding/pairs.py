"""What both pair readers share: the one pairs config, how a pair's crops are placed, and the read counters.

Two readers cut anchor/positive pairs from a shard set: `sharding.crops` reads only the bytes of the two crops
(the default wherever byte ranges can be read) and `sharding.stream` decodes whole tracks sequentially (the
fallback for locations that cannot serve ranges, such as `pipe:` commands). `sharding.readers.open_pairs`
picks one; both take a `PairsConfig` and yield (B, 2, S) int16 batches that `pairs_to_float` converts.
"""

from __future__ import annotations

import math
import multiprocessing
import os
from dataclasses import dataclass, fields
from typing import Literal

import numpy as np
import torch

from data_prep.pcm import PCM_SCALE

ReaderName = Literal["auto", "random_access", "stream"]
MAX_FRUITLESS_VISITS = 1000  # consecutive unreadable or too-short reads before a worker gives up loudly


@dataclass(frozen=True)
class PairsConfig:
    """How anchor/positive pairs are cut from the shards and read; the defaults are the paper's."""

    crop_seconds: float = 4.0
    """Length of each crop in seconds (ignored when the backbone fixes its input length, e.g. SampleCNN)."""
    crop_samples: int | None = None
    """Crop length in samples; overrides crop_seconds (e.g. 59049 for SampleCNN)."""
    min_gap_seconds: float = 4.0
    """Smallest start-to-start distance between anchor and positive, either side."""
    max_gap_seconds: float = 16.0
    """Largest start-to-start distance between anchor and positive."""
    pairs_per_track: int = 1
    """Pairs per track per epoch (random access: spread over the epoch; stream: cut per track visit)."""
    split: str | None = "train"
    """Train on tracks of this split only (tracks without a split count as training data); None: all tracks."""
    reader: ReaderName = "auto"
    """random_access: read only the two crops of a pair (needs tracks.parquet and byte ranges); stream: decode
    whole tracks sequentially; auto: random_access where possible, else the stream, with a message saying why."""
    num_workers: int = 4
    """Loader worker processes per rank."""
    max_failed_share: float = 0.01
    """Random access: stop with an error when more than this share of the last `failure_window` reads failed."""
    failure_window: int = 10_000
    """Random access: pair reads per worker over which the failed share is judged."""
    requests_in_flight: int = 32
    """Random access, remote sets: range requests a worker keeps in flight (hides latency)."""
    read_retries: int = 2
    """Random access: retries of a failed or short read before the pair is replaced and counted."""
    track_shuffle: int = 16
    """Stream only: shuffle buffer of whole tracks per worker (16 x 7.7 MB for 4-minute tracks at 16 kHz)."""
    pair_shuffle: int = 1024
    """Stream only: shuffle buffer of pairs per worker (1024 x 256 KB at 4 s, 16 kHz; docs/data-layout.md)."""
    start_method: str | None = None
    """How loader workers start: fork, forkserver, spawn; None: Python's default."""

    def __post_init__(self) -> None:
        if self.crop_samples is None and self.crop_seconds <= 0:
            raise ValueError(f"crop_seconds must be positive, got {self.crop_seconds}")
        if self.crop_samples is not None and self.crop_samples <= 0:
            raise ValueError(f"crop_samples must be positive, got {self.crop_samples}")
        if not 0 <= self.min_gap_seconds <= self.max_gap_seconds:
            raise ValueError(
                f"need 0 <= min_gap_seconds <= max_gap_seconds, got {self.min_gap_seconds} and {self.max_gap_seconds}"
            )
        for name in ("pairs_per_track", "track_shuffle", "pair_shuffle", "failure_window", "requests_in_flight"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.num_workers < 0:
            raise ValueError(f"num_workers must be 0 (load in the main process) or more, got {self.num_workers}")
        if self.read_retries < 0:
            raise ValueError(f"read_retries must be 0 or more, got {self.read_retries}")
        if not 0 <= self.max_failed_share <= 1:
            raise ValueError(f"max_failed_share must be in [0, 1], got {self.max_failed_share}")

    def crop_length(self, sample_rate: int) -> int:
        """Crop length in samples at the set's sample rate."""
        return self.crop_samples if self.crop_samples is not None else round(self.crop_seconds * sample_rate)

    def gap_bounds(self, sample_rate: int) -> tuple[int, int]:
        """(min, max) start-to-start distance in samples."""
        return math.ceil(self.min_gap_seconds * sample_rate), math.floor(self.max_gap_seconds * sample_rate)


def check_loader_arguments(batch_size: int, seed: int, batches_per_epoch: int | None) -> None:
    """Refuse loader arguments that cannot give a batch, naming the argument."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    if seed < 0:
        raise ValueError(f"seed must be 0 or more, got {seed}")
    if batches_per_epoch is not None and batches_per_epoch < 1:
        raise ValueError(f"batches_per_epoch must be at least 1, got {batches_per_epoch}")


def sample_pair_starts(
    rng: np.random.Generator, num_samples: int | np.ndarray, crop: int, min_gap: int, max_gap: int, count: int
) -> np.ndarray:
    """(count, 2) start indices (anchor, positive), all crops inside the track, positive min-max gap away.

    `num_samples` is one track's length or one length per pair (then `count` is its length). The anchor is
    uniform over the starts that admit a positive; the positive is uniform over the valid starts on either
    side of it. Raises ValueError for a track shorter than `crop + min_gap`.
    """
    last = np.asarray(num_samples, dtype=np.int64) - crop  # last valid start
    if np.any(last < min_gap):
        raise ValueError(f"track of {np.min(num_samples)} samples is too short for a pair ({crop + min_gap} needed)")
    # anchors with a positive: [0, last - min_gap] and [min_gap, last]; skip the hole between them, if any
    left_count = last - min_gap + 1
    hole = np.maximum(0, min_gap - left_count)
    draw = rng.integers(0, last + 1 - hole, size=count)
    anchor = draw + hole * (draw >= left_count)
    left_low = np.maximum(0, anchor - max_gap)
    left_size = np.maximum(0, anchor - min_gap - left_low + 1)
    right_size = np.maximum(0, np.minimum(last, anchor + max_gap) - (anchor + min_gap) + 1)
    pick = rng.integers(0, left_size + right_size)
    positive = np.where(pick < left_size, left_low + pick, anchor + min_gap + pick - left_size)
    return np.stack([anchor, positive], axis=1)


def pairs_to_float(batch: torch.Tensor) -> torch.Tensor:
    """int16 PCM batch -> float32 in [-1, 1), on the batch's device (run it after moving the batch there)."""
    return batch.float().mul_(1.0 / PCM_SCALE)


def empty_batch(batch_size: int, crop: int) -> torch.Tensor:
    """A (B, 2, crop) int16 batch to fill, in shared memory inside a loader worker so handing it over copies
    nothing."""
    out = torch.empty((batch_size, 2, crop), dtype=torch.int16)
    if torch.utils.data.get_worker_info() is not None:
        out.share_memory_()
    return out


def distributed_position() -> tuple[int, int]:
    """(rank, world_size) from torch.distributed when initialised, else RANK/WORLD_SIZE, else (0, 1)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


@dataclass(frozen=True)
class LoaderStats:
    """What a loader's workers have read so far (all workers, all epochs)."""

    tracks: int = 0  # track visits read (stream: whole tracks decoded; random access: pairs' tracks)
    bytes: int = 0  # payload bytes read for them
    pairs: int = 0
    corrupt_skipped: int = 0  # reads that failed: unreadable members or shards, damaged offsets
    short_skipped: int = 0  # tracks too short for a pair


STAT_NAMES = tuple(f.name for f in fields(LoaderStats))


class SharedCounters:
    """LoaderStats counters in shared memory, written by loader workers and read by the main process."""

    def __init__(self, location: str, context: multiprocessing.context.BaseContext) -> None:
        self.location = location
        self._values = context.Array("q", len(STAT_NAMES))  # same context as the workers, or it cannot travel
        self._fruitless = 0  # per process: reads since the last pair

    def add(self, **counts: int) -> None:
        """Add to named counters under one lock."""
        with self._values.get_lock():
            for name, value in counts.items():
                self._values[STAT_NAMES.index(name)] += value

    def snapshot(self) -> LoaderStats:
        """The current totals."""
        with self._values.get_lock():
            return LoaderStats(*self._values[:])

    def productive(self) -> None:
        """Note that a read gave a pair."""
        self._fruitless = 0

    def fruitless(self, reason: str) -> None:
        """Note a read that gave no pair; stop loudly when nothing in the set can give pairs."""
        self._fruitless += 1
        if self._fruitless >= MAX_FRUITLESS_VISITS:
            raise RuntimeError(
                f"{self.location}: {self._fruitless} reads in a row gave no pair (last: {reason}); the shards are "
                "unreadable or the tracks shorter than crop + min gap; check the set with "
                "`python -m sharding verify` or shorten the crop"
            )
