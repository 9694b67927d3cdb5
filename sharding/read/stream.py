"""Online anchor/positive pairs streamed from a shard set, balanced across ranks and loader workers.

Pipeline per worker: resampled shards -> tar members -> decoded tracks (corrupt ones skipped and counted) ->
track shuffle -> `pairs_per_track` fresh pairs per track visit -> pair shuffle -> (B, 2, S) int16 batches.
Batches stay int16 PCM (half the bytes of float32 to hand over and to copy to the accelerator); the consumer
converts them on its device with `Layout.to_model_input`.
Shards are drawn with replacement, so every rank yields exactly `batches_per_epoch` batches and DDP never
waits on a rank that ran out of data; seeds depend on (seed, epoch, rank, worker), so runs are reproducible
and no two workers draw the same stream.
"""

from __future__ import annotations

import functools
import logging
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import webdataset as wds

from musicssl.sharding.format import TrackMeta, decode_track
from musicssl.sharding.layout import PCM_LAYOUT
from musicssl.sharding.location import tar_samples
from musicssl.sharding.read.batches import empty_batch, sample_pair_starts
from musicssl.sharding.read.config import PairsConfig
from musicssl.sharding.read.counters import LoaderStats, SharedCounters
from musicssl.sharding.read.reader import PairReader
from musicssl.sharding.shard_set import ShardSet

logger = logging.getLogger(__name__)


def skip_corrupt(counters: SharedCounters, error: Exception) -> bool:
    """webdataset error handler: count and log an unreadable member or shard, then carry on."""
    logger.warning("%s: skipping unreadable data: %s", counters.location, error)
    counters.add(corrupt_skipped=1)
    counters.fruitless(str(error))
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
    """Raw tar samples -> (int16 view, TrackMeta) of the selected split; corrupt samples are skipped and counted."""

    def __init__(self, counters: SharedCounters, split: str | None) -> None:
        self.counters, self.split = counters, split

    def __call__(self, samples: Iterable[dict[str, Any]]) -> Iterator[tuple[np.ndarray, TrackMeta]]:
        for sample in samples:
            try:
                pcm, meta = decode_track(sample, PCM_LAYOUT)
            except ValueError as err:
                skip_corrupt(self.counters, ValueError(f"{sample.get('__url__', '?')}: {err}"))
                continue
            self.counters.add(tracks=1, bytes=pcm.nbytes + len(sample.get("json", b"")))
            if self.split is not None and meta.split not in (None, self.split):
                self.counters.fruitless(f"{meta.track_id} is in split {meta.split}, not {self.split}")
                continue
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


class CollatePairs:
    """Pipeline stage that collates (2, crop) int16 pairs into (B, 2, crop) int16 batch tensors."""

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
        """Stack straight into the output batch."""
        out = empty_batch((len(batch), 2, batch[0].shape[-1]), PCM_LAYOUT.dtype)
        np.stack(batch, out=out.numpy())
        return out


class StreamReader(PairReader):
    """The sequential stream: decodes whole tracks of resampled shards; it cannot seek, so `iter_from` streams the
    epoch again up to its batch."""

    def __init__(
        self,
        shards: ShardSet,
        config: PairsConfig,
        batch_size: int,
        rank: int,
        world_size: int,
        seed: int = 0,
        batches_per_epoch: int | None = None,
    ) -> None:
        if shards.index.layout.is_mel:
            raise ValueError(
                f"{shards.location}: a log-mel set ({shards.index.encoding}) is read by random access only; the "
                "sequential stream cuts pairs from PCM. Build its track table with `python -m sharding index` and "
                "read it from a location that serves byte ranges"
            )
        super().__init__(shards, config, batch_size, rank, world_size, seed, batches_per_epoch)
        self.batches_per_epoch = batches_per_epoch or max(
            1, shards.index.num_tracks * config.pairs_per_track // (batch_size * world_size)
        )
        self.seeds = StreamSeed(seed, rank)
        self.resampled = wds.ResampledShards(shards.urls, worker_seed=self.seeds.shard_seed, deterministic=True)
        pipeline = wds.DataPipeline(
            self.resampled,
            functools.partial(tar_samples, handler=functools.partial(skip_corrupt, self.counters)),
            DecodeTracks(self.counters, config.split),
            Shuffle(config.track_shuffle, self.seeds, stage=1),
            CutPairs(
                self.crop_samples,
                config.gap_bounds(self.sample_rate),
                config.pairs_per_track,
                self.seeds,
                self.counters,
            ),
            Shuffle(config.pair_shuffle, self.seeds, stage=3),
            CollatePairs(batch_size),
        )
        self.loader = wds.WebLoader(
            pipeline,
            batch_size=None,
            num_workers=config.num_workers,
            persistent_workers=False,
            multiprocessing_context=self.context if config.num_workers else None,
        ).with_epoch(self.batches_per_epoch)

    def read_epoch(self, epoch: int, start: int) -> Iterator[torch.Tensor]:
        """The batches of epoch `epoch` from batch `start` on: those before it are streamed again and dropped."""
        self.seeds.epoch = epoch  # seeds every worker
        # ResampledShards mixes its own iteration count into its seed, but only in the process that iterates
        # it: reset it so that, with or without workers, the epoch comes from `self.seeds` alone.
        self.resampled.epoch = -1
        before = self.stats
        try:
            for number, pairs in enumerate(self.loader):
                if number >= start:
                    yield pairs
        finally:
            self.log_skipped(before, epoch)

    def log_skipped(self, before: LoaderStats, epoch: int) -> None:
        """Log what this epoch skipped, so lost data shows in the training log."""
        after = self.stats
        skipped = after.corrupt_skipped - before.corrupt_skipped, after.short_skipped - before.short_skipped
        if any(skipped):
            logger.warning(
                "%s epoch %d rank %d: skipped %d unreadable members and %d tracks too short for a pair "
                "(totals %d and %d)",
                self.location,
                epoch,
                self.rank,
                *skipped,
                after.corrupt_skipped,
                after.short_skipped,
            )
