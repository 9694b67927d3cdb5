"""Limited-data protocol: train probes on 1, 5, 10, 20 and 100 % of the training tracks, several draws each.

The subset size is round-half-up(fraction * N), at least 1 track, so sizes are exact and reproducible
(Python's `round` would round 2.5 to 2). Each (fraction, draw) gets its own random generator seeded from
(seed, fraction index, draw), so draws differ from each other and adding fractions does not change the others.
At 100 % every draw holds the whole training set; the draws then differ by the probe's seed only.
The test set is never subsampled here: every subset is evaluated on the full test set.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

PAPER_FRACTIONS = (0.01, 0.05, 0.1, 0.2, 1.0)


@dataclass(frozen=True)
class LimitedDataConfig:
    """Training fractions and number of random draws per fraction (paper: 4 draws)."""

    fractions: tuple[float, ...] = PAPER_FRACTIONS
    draws: int = 4
    seed: int = 0

    def __post_init__(self) -> None:
        """Reject fractions outside (0, 1] and non-positive draw counts."""
        bad = [fraction for fraction in self.fractions if not 0.0 < fraction <= 1.0]
        if bad or not self.fractions:
            raise ValueError(f"limited-data fractions must be a non-empty list in (0, 1], got {self.fractions}")
        if self.draws < 1:
            raise ValueError(f"limited-data draws must be >= 1, got {self.draws}")


@dataclass(frozen=True)
class TrainingSubset:
    """One draw of one fraction: the sorted training track indices and a seed for the probe trained on it."""

    fraction: float
    draw: int
    indices: np.ndarray
    probe_seed: int


def subset_size(num_tracks: int, fraction: float) -> int:
    """Number of training tracks for a fraction: round-half-up(fraction * N), at least 1."""
    if num_tracks < 1:
        raise ValueError("the training set is empty")
    return max(1, int(np.floor(fraction * num_tracks + 0.5)))


def training_subsets(num_tracks: int, config: LimitedDataConfig) -> Iterator[TrainingSubset]:
    """Yield every (fraction, draw) subset of range(num_tracks), reproducibly from config.seed."""
    for fraction_index, fraction in enumerate(config.fractions):
        size = subset_size(num_tracks, fraction)
        for draw in range(config.draws):
            rng = np.random.default_rng([config.seed, fraction_index, draw])
            indices = np.sort(rng.choice(num_tracks, size=size, replace=False))
            probe_seed = int(rng.integers(2**31 - 1))
            yield TrainingSubset(fraction=fraction, draw=draw, indices=indices, probe_seed=probe_seed)
