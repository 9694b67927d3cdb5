"""Which track every pair of every batch comes from, as a pure function of (seed, epoch, batch, rank).

The items of training are an endless sequence of passes over the selected tracks, each pass a seeded
permutation of them. A batch of rank r is `batch_size` consecutive positions of that sequence, the ranks' batches
of one step side by side, so every rank gets the same number of batches by construction, no track appears twice
in a step's global batch unless that batch straddles two passes or the set has fewer tracks than the batch, and
the k pairs of a track (k = pairs_per_track) fall in k different passes, spread over the epoch. The global batch of a
step does not depend on how many ranks share it, so a run checkpointed on N processes resumes on M with the same
global batches (the crop starts too are drawn for the whole global batch: `sharding.read.random_access`). Loader
worker w of W takes the batches b with b % W == w, which a DataLoader hands out in order. Nothing is buffered, and any
(epoch, batch) can be started from directly: a resumed run reads nothing it already trained on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PERMUTATION_STAGE = 0  # entropy tags, so the streams of random numbers drawn for different jobs never coincide
CROP_STAGE = 1
REPLACEMENT_STAGE = 2


@dataclass(frozen=True)
class EpochPlan:
    """The positions of every batch; an epoch is `pairs_per_track` passes or a fixed number of batches."""

    num_tracks: int
    pairs_per_track: int
    batch_size: int  # pairs per batch of one rank
    world_size: int
    seed: int
    fixed_batches: int | None = None  # batches per epoch per rank (the paper: 512 steps); None: by passes

    def __post_init__(self) -> None:
        if self.num_tracks < 1:
            raise ValueError("no track to draw pairs from: the selected split of the set is empty")

    @property
    def global_batch(self) -> int:
        return self.batch_size * self.world_size

    @property
    def batches_per_epoch(self) -> int:
        """Batches every rank reads per epoch (passes: the whole batches that fit, at least one)."""
        if self.fixed_batches is not None:
            return self.fixed_batches
        return max(1, self.num_tracks * self.pairs_per_track // self.global_batch)

    def epoch_start(self, epoch: int) -> int:
        """Position of the first item of `epoch`: epochs of passes start on a pass boundary."""
        if self.fixed_batches is not None:
            return epoch * self.fixed_batches * self.global_batch
        return epoch * self.num_tracks * self.pairs_per_track

    def step_positions(self, epoch: int, batch: int) -> np.ndarray:
        """The item positions of one batch of every rank, rank 0's first: the same whatever the number of ranks
        that share the global batch."""
        first = self.epoch_start(epoch) + batch * self.global_batch
        return np.arange(first, first + self.global_batch, dtype=np.int64)

    def positions(self, epoch: int, batch: int, rank: int) -> np.ndarray:
        """The item positions of one batch of one rank: its slice of `step_positions`."""
        return self.step_positions(epoch, batch)[rank * self.batch_size : (rank + 1) * self.batch_size]

    def worker_batches(self, start: int, worker: int, workers: int) -> range:
        """The batches of an epoch, from `start` on, that loader worker `worker` of `workers` reads."""
        return range(start + worker, self.batches_per_epoch, workers)

    def permutation(self, pass_number: int) -> np.ndarray:
        """The order of the tracks in one pass."""
        rng = np.random.default_rng([self.seed, PERMUTATION_STAGE, pass_number])
        dtype = np.int32 if self.num_tracks < 2**31 else np.int64
        return rng.permutation(self.num_tracks).astype(dtype, copy=False)

    def batch_rng(self, stage: int, positions: np.ndarray) -> np.random.Generator:
        """Random numbers of one batch for one job (crop starts, replacements), seeded by its first position."""
        return np.random.default_rng([self.seed, stage, int(positions[0])])


class TrackOrder:
    """Track numbers at item positions, keeping the last passes' permutations (one per pass, shared by batches)."""

    def __init__(self, plan: EpochPlan, keep: int = 2) -> None:
        self.plan, self.keep = plan, keep
        self._passes: dict[int, np.ndarray] = {}

    def tracks(self, positions: np.ndarray) -> np.ndarray:
        """The track number (0..num_tracks-1 over the selected tracks) at each position."""
        passes, within = np.divmod(positions, self.plan.num_tracks)
        out = np.empty(len(positions), dtype=np.int64)
        for number in np.unique(passes):
            mask = passes == number
            out[mask] = self._permutation(int(number))[within[mask]]
        return out

    def _permutation(self, number: int) -> np.ndarray:
        if number not in self._passes:
            if len(self._passes) >= self.keep:
                del self._passes[min(self._passes)]
            self._passes[number] = self.plan.permutation(number)
        return self._passes[number]
