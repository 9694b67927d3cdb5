"""The one interface of both pair readers (`random_access`, `stream`), with the preamble they share written once.

A reader is an iterable of CPU batches of one rank ((B, 2, S) int16 samples, or (B, 2, frames, n_mels) log-mel from
a log-mel set), exactly `batches_per_epoch` per epoch on every rank (`Layout.to_model_input` converts them on the
device); iterating reads the next epoch, `iter_from(epoch, batch)`
continues from any data position without end, and `stats` totals what all its workers read.
"""

from __future__ import annotations

import multiprocessing
from abc import ABC, abstractmethod
from collections.abc import Iterator

import torch

from musicssl.sharding.read.config import PairsConfig
from musicssl.sharding.read.counters import LoaderStats, SharedCounters
from musicssl.sharding.shard_set import ShardSet


def check_loader_arguments(batch_size: int, seed: int, batches_per_epoch: int | None) -> None:
    """Refuse reader arguments that cannot give a batch, naming the argument."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    if seed < 0:
        raise ValueError(f"seed must be 0 or more, got {seed}")
    if batches_per_epoch is not None and batches_per_epoch < 1:
        raise ValueError(f"batches_per_epoch must be at least 1, got {batches_per_epoch}")


class PairReader(ABC):
    """Anchor/positive pairs of one rank from a shard set; a subclass sets `batches_per_epoch` and reads an epoch."""

    batches_per_epoch: int

    def __init__(
        self,
        shards: ShardSet,
        config: PairsConfig,
        batch_size: int,
        rank: int,
        world_size: int,
        seed: int,
        batches_per_epoch: int | None,
    ) -> None:
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is outside [0, world_size={world_size})")
        check_loader_arguments(batch_size, seed, batches_per_epoch)
        self.location, self.config = shards.location, config
        self.rank, self.world_size = rank, world_size
        self.sample_rate = shards.sample_rate
        self.layout = shards.index.layout
        self.crop_samples = config.crop_length(shards.sample_rate)
        self.context = multiprocessing.get_context(config.start_method)
        self.counters = SharedCounters(self.location, self.context)  # the workers' context, or it cannot travel
        self.epoch = 0

    @property
    def stats(self) -> LoaderStats:
        """Totals over all workers and epochs so far."""
        return self.counters.snapshot()

    def __len__(self) -> int:
        return self.batches_per_epoch

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch the next iteration reads, e.g. when resuming from a checkpoint."""
        self.epoch = epoch

    def __iter__(self) -> Iterator[torch.Tensor]:
        """One epoch, then the next call reads the next one."""
        try:
            yield from self.read_epoch(self.epoch, 0)
        finally:
            self.epoch += 1

    def iter_from(self, epoch: int, batch: int) -> Iterator[torch.Tensor]:
        """Batches from batch `batch` of epoch `epoch` on, across epochs, without end."""
        while True:
            yield from self.read_epoch(epoch, batch)
            epoch, batch = epoch + 1, 0

    @abstractmethod
    def read_epoch(self, epoch: int, start: int) -> Iterator[torch.Tensor]:
        """The batches of epoch `epoch` from batch `start` on."""
