"""Paired comparison of two evaluations on the same test tracks: bootstrap of the difference of their metrics.

Two probes scored on one test set are not independent (a hard track is hard for both), so comparing two
bootstrap means side by side overstates the uncertainty of their difference, and a bare `>` ignores it. Here
every resample draws N of the N test tracks with replacement, scores both evaluations' predictions on the same
draw, and keeps the difference (a - b) of each metric (`downstream.metrics`; all resamples at once, as track
weightings). Reported: the difference on the whole test set, the mean and the percentile interval over the
resamples, and a one-sided p-value, the share of resamples where a is not ahead (a tie counts one half, so
identical predictions give p = 0.5). Precision@k of a shared tag is paired the same way, from each side's
per-track values (the backbones' test embeddings, not the probes); it is left out where a side lacks them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from musicssl.downstream.metrics import METRIC_NAMES, resampled_macro_scores, tagging_scores


@dataclass(frozen=True)
class ProbePredictions:
    """What a probe predicted for each test track: ids, multi-hot targets (N, C) and scores (N, C); with the test
    embeddings' per-track precision@k of a shared tag (N,), `metrics.shared_tag_precision` (None in older runs)."""

    track_ids: tuple[str, ...]
    targets: np.ndarray
    scores: np.ndarray
    neighbour_precision: np.ndarray | None = None

    def __post_init__(self) -> None:
        """Reject arrays that do not describe the same N tracks and C tags."""
        if self.targets.shape != self.scores.shape or self.targets.shape[0] != len(self.track_ids):
            raise ValueError(
                f"{len(self.track_ids)} track ids, targets {self.targets.shape} and scores {self.scores.shape} "
                "must describe the same (N, C) test set"
            )
        if self.neighbour_precision is not None and self.neighbour_precision.shape != (len(self.track_ids),):
            raise ValueError(
                f"{len(self.track_ids)} track ids but neighbour precision of shape {self.neighbour_precision.shape}"
            )

    def same_test_set(self, other: ProbePredictions) -> bool:
        """Whether both were scored on the same tracks, in the same order, with the same targets."""
        return self.track_ids == other.track_ids and np.array_equal(self.targets, other.targets)


@dataclass(frozen=True)
class PairedConfig:
    """Resamples of the test set (with replacement, each of size N), their seed and the interval's level."""

    num_resamples: int = 1000
    seed: int = 0
    confidence: float = 0.95

    def __post_init__(self) -> None:
        """Reject too few resamples and levels outside (0, 1)."""
        if self.num_resamples < 10:
            raise ValueError(f"a paired bootstrap needs >= 10 resamples, got {self.num_resamples}")
        if not 0.0 < self.confidence < 1.0:
            raise ValueError(f"confidence must be in (0, 1), got {self.confidence}")


@dataclass(frozen=True)
class PairedDifference:
    """The difference a - b of one metric: on the whole test set, over the resamples, and its p-value."""

    metric: str
    observed: float
    mean: float
    low: float
    high: float
    p_value: float
    num_resamples: int
    confidence: float

    def sentence(self, name_a: str, name_b: str) -> str:
        """'a - b: +X (95 % CI lo..hi, p = ...)', the line a reviewer reads."""
        p_text = f"p < {1 / self.num_resamples:.3g}" if self.p_value == 0 else f"p = {self.p_value:.3g}"
        level = f"{100 * self.confidence:g} %"
        return (
            f"{name_a} - {name_b}: {self.observed:+.2f} ({level} CI {self.low:+.2f}..{self.high:+.2f}, {p_text}, "
            f"one-sided, {self.num_resamples} paired resamples)"
        )


def paired_bootstrap(
    a: ProbePredictions,
    b: ProbePredictions,
    config: PairedConfig | None = None,
    metrics: Sequence[str] = METRIC_NAMES,
) -> dict[str, PairedDifference]:
    """Paired bootstrap of each named metric's difference a - b; both must hold the same test set."""
    config = config or PairedConfig()
    if not a.same_test_set(b):
        raise ValueError("a paired comparison needs both evaluations on the same test tracks with the same targets")
    observed_a = tagging_scores(a.targets, a.scores, a.neighbour_precision).values()
    observed_b = tagging_scores(b.targets, b.scores, b.neighbour_precision).values()
    rng = np.random.default_rng(config.seed)
    num_tracks = len(a.track_ids)
    draws = rng.integers(0, num_tracks, size=(config.num_resamples, num_tracks))
    counts = np.zeros((config.num_resamples, num_tracks))
    np.add.at(counts, (np.arange(config.num_resamples)[:, None], draws), 1.0)  # how often each track was drawn
    resampled_a = resampled_macro_scores(a.targets, a.scores, counts, metrics, a.neighbour_precision)
    resampled_b = resampled_macro_scores(b.targets, b.scores, counts, metrics, b.neighbour_precision)
    differences = {metric: resampled_a[metric] - resampled_b[metric] for metric in metrics}
    tail = 100 * (1 - config.confidence) / 2
    results = {}
    for metric, all_values in differences.items():
        values = all_values[~np.isnan(all_values)]  # a draw where no tag (or track) has both classes, or no precision
        if not len(values):
            continue
        low, high = np.percentile(values, [tail, 100 - tail])
        results[metric] = PairedDifference(
            metric=metric,
            observed=observed_a[metric] - observed_b[metric],
            mean=float(values.mean()),
            low=float(low),
            high=float(high),
            p_value=float(((values < 0).sum() + 0.5 * (values == 0).sum()) / len(values)),
            num_resamples=len(values),
            confidence=config.confidence,
        )
    return results
