"""Bootstrap of test metrics: score random halves of the test set to get a mean and a spread (ICASSP paper).

Each resample draws `round(fraction * N)` test tracks without replacement (at least 2), scores them with
`tagging_scores` (precision@k: the mean of the drawn tracks' per-track values), and the summary is the mean and
the population standard deviation (ddof=0) of the resampled values. The per-resample values are kept: they are
logged as an artifact and plotted (Figure 1).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from musicssl.downstream.metrics import METRIC_NAMES, TaggingScores, tagging_scores


@dataclass(frozen=True)
class BootstrapConfig:
    """How many resamples of which fraction of the test set; the paper uses 50 resamples of 50 %."""

    fraction: float = 0.5
    num_resamples: int = 50
    seed: int = 0

    def __post_init__(self) -> None:
        """Reject fractions outside (0, 1] and non-positive resample counts."""
        if not 0.0 < self.fraction <= 1.0:
            raise ValueError(f"bootstrap fraction must be in (0, 1], got {self.fraction}")
        if self.num_resamples < 1:
            raise ValueError(f"bootstrap num_resamples must be >= 1, got {self.num_resamples}")


@dataclass(frozen=True)
class BootstrapResult:
    """Scores of every resample with their mean and standard deviation per metric."""

    resamples: tuple[TaggingScores, ...]

    def metric_values(self, metric: str) -> np.ndarray:
        """Values of one metric (see METRIC_NAMES) over the resamples."""
        if metric not in METRIC_NAMES:
            raise KeyError(f"unknown metric {metric!r}; choose one of {METRIC_NAMES}")
        return np.array([getattr(scores, metric) for scores in self.resamples])

    def defined_values(self, metric: str) -> np.ndarray:
        """Values of one metric over the resamples, without the NaN ones (undefined, or not computed)."""
        values = self.metric_values(metric)
        return values[~np.isnan(values)]

    def mean(self) -> dict[str, float]:
        """Mean of each metric over the resamples (NaN resamples ignored; NaN if all are)."""
        return {m: float(v.mean()) if len(v := self.defined_values(m)) else np.nan for m in METRIC_NAMES}

    def std(self) -> dict[str, float]:
        """Population standard deviation (ddof=0) of each metric over the resamples (NaN ignored; NaN if all are)."""
        return {m: float(v.std()) if len(v := self.defined_values(m)) else np.nan for m in METRIC_NAMES}


def resample_size(num_tracks: int, fraction: float) -> int:
    """Tracks per resample: round(fraction * N), at least 2 so that a tag can have both classes."""
    if num_tracks < 2:
        raise ValueError(f"bootstrapping needs at least 2 test tracks, got {num_tracks}")
    return max(2, int(np.floor(fraction * num_tracks + 0.5)))


def bootstrap_scores(
    targets: np.ndarray, scores: np.ndarray, config: BootstrapConfig, neighbour_precision: np.ndarray | None = None
) -> BootstrapResult:
    """Score `config.num_resamples` random subsets of the test tracks, reproducibly from `config.seed`; precision@k
    from the tracks' `neighbour_precision` (`metrics.shared_tag_precision`), NaN without it."""
    num_tracks = len(targets)
    size = resample_size(num_tracks, config.fraction)
    rng = np.random.default_rng(config.seed)
    resamples = []
    for _ in range(config.num_resamples):
        chosen = rng.choice(num_tracks, size=size, replace=False)
        chosen_precision = None if neighbour_precision is None else neighbour_precision[chosen]
        resamples.append(tagging_scores(targets[chosen], scores[chosen], chosen_precision))
    return BootstrapResult(tuple(resamples))
