"""Music tagging metrics: macro ROC-AUC and PR-AUC (average precision), tag-wise and clip-wise, x100; and a
retrieval metric of the embeddings themselves, precision@k of a shared tag.

Tag-wise scores one tag over all tracks and averages over tags (the papers' "macro"); clip-wise scores one
track over all tags and averages over tracks (the thesis). A tag (or track) whose targets hold a single class
has no defined AUC: it is skipped and counted. Both scores are computed column-wise in vectorised numpy from one
sort per column, under any number of track weightings at once (a bootstrap resample is a weighting: how often
each track was drawn), and match scikit-learn's `roc_auc_score` / `average_precision_score`, ties included.

Precision@k of a shared tag (k = PRECISION_K = 10): for each test track, the share of its k cosine-nearest other
test tracks (frozen embeddings, no probe) that share at least one tag with it, averaged over the tracks x100; a
track without tags is skipped. It is a per-track score like the clip-wise ones, so a resample weights the tracks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from musicssl.downstream.similarity import nearest_others

PRECISION_AT_K = "precision_at_k"
PRECISION_K = 10
METRIC_NAMES = ("roc_auc_tagwise", "pr_auc_tagwise", "roc_auc_clipwise", "pr_auc_clipwise", PRECISION_AT_K)


@dataclass(frozen=True)
class TaggingScores:
    """Macro ROC-AUC / PR-AUC x100, tag-wise and clip-wise, with how many tags/tracks were skipped, and the
    embeddings' precision@k of a shared tag x100 (NaN when it was not computed)."""

    roc_auc_tagwise: float
    pr_auc_tagwise: float
    roc_auc_clipwise: float
    pr_auc_clipwise: float
    precision_at_k: float
    skipped_tags: int
    skipped_clips: int

    def values(self) -> dict[str, float]:
        """The metrics by name (see METRIC_NAMES)."""
        return {name: value for name, value in asdict(self).items() if name in METRIC_NAMES}


@dataclass(frozen=True)
class _RankedColumns:
    """Each column sorted by decreasing score: the sort order, and the first and last position of every tie group."""

    targets: np.ndarray
    order: np.ndarray
    group_start: np.ndarray
    group_end: np.ndarray


def _rank_columns(targets: np.ndarray, scores: np.ndarray) -> _RankedColumns:
    """Sort every column by decreasing score and locate the tie group of every position."""
    n_rows = scores.shape[0]
    order = np.argsort(-scores, axis=0, kind="stable")
    sorted_scores = np.take_along_axis(scores, order, axis=0)
    positions = np.broadcast_to(np.arange(n_rows)[:, None], scores.shape)
    differs_from_next = np.ones_like(sorted_scores, dtype=bool)
    differs_from_next[:-1] = sorted_scores[:-1] != sorted_scores[1:]
    differs_from_previous = np.roll(differs_from_next, 1, axis=0)
    differs_from_previous[0] = True
    ends = np.where(differs_from_next, positions, n_rows)
    starts = np.where(differs_from_previous, positions, -1)
    return _RankedColumns(
        targets=np.take_along_axis(targets.astype(np.float64), order, axis=0),
        order=order,
        group_start=np.maximum.accumulate(starts, axis=0),
        group_end=np.minimum.accumulate(ends[::-1], axis=0)[::-1],
    )


def _weighted_per_column(ranked: _RankedColumns, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """ROC-AUC and average precision (B, C) of every column under each of B row weightings (B, N).

    A weight is how often a row counts (1 everywhere: the plain metric; bootstrap counts: a resample, exactly
    as if the rows were repeated). ROC-AUC is the weighted share of (positive, negative) pairs ranked right,
    ties counting one half; average precision is the sum over positives of the precision at the end of their
    tie group, which is scikit-learn's step-wise definition. NaN where a column has no weight on one class.
    """
    w = weights[:, ranked.order]  # (B, N, C): each column's rows in its sorted order
    positive = w * ranked.targets
    negative = w - positive
    start = np.broadcast_to(ranked.group_start, w.shape)
    end = np.broadcast_to(ranked.group_end, w.shape)

    def cumulative_at(values: np.ndarray, index: np.ndarray) -> np.ndarray:
        """Sum of values[:, :index] along the rows (index may be 0: nothing)."""
        padded = np.concatenate([np.zeros_like(values[:, :1]), np.cumsum(values, axis=1)], axis=1)
        return np.take_along_axis(padded, index, axis=1)

    negatives_through_group = cumulative_at(negative, end + 1)
    tied_negatives = negatives_through_group - cumulative_at(negative, start)
    total_positive, total_negative = positive.sum(axis=1), negative.sum(axis=1)
    negatives_below = total_negative[:, None, :] - negatives_through_group
    precision = cumulative_at(positive, end + 1) / np.maximum(cumulative_at(w, end + 1), np.finfo(float).tiny)
    defined = (total_positive > 0) & (total_negative > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        roc = (positive * (negatives_below + 0.5 * tied_negatives)).sum(axis=1) / (total_positive * total_negative)
        ap = (positive * precision).sum(axis=1) / total_positive
    return np.where(defined, roc, np.nan), np.where(defined, ap, np.nan)


def roc_auc_per_column(targets: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """ROC-AUC of each column (Mann-Whitney U, ties count one half); NaN where one class only."""
    unit = np.ones((1, targets.shape[0]))
    return _weighted_per_column(_rank_columns(np.asarray(targets), np.asarray(scores, float)), unit)[0][0]


def average_precision_per_column(targets: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Average precision of each column, sum over thresholds of (R_k - R_k-1) P_k; NaN where one class only.

    Tied scores form one threshold: each positive contributes the precision measured at the end of its
    tie group, which is scikit-learn's step-wise definition (no interpolation).
    """
    unit = np.ones((1, targets.shape[0]))
    return _weighted_per_column(_rank_columns(np.asarray(targets), np.asarray(scores, float)), unit)[1][0]


def _macro(per_column: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """(Weighted) mean over the defined columns of each row of (B, C) values, x100; NaN when none is defined."""
    weights = np.ones_like(per_column) if weights is None else np.broadcast_to(weights, per_column.shape)
    weights = np.where(np.isnan(per_column), 0.0, weights)
    total = weights.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = (np.nan_to_num(per_column) * weights).sum(axis=1) / total
    return np.where(total > 0, 100.0 * mean, np.nan)


def shared_tag_precision(embeddings: np.ndarray, targets: np.ndarray, k: int = PRECISION_K) -> np.ndarray:
    """Per track (N,): the share of its k cosine-nearest other tracks that share a tag with it; NaN for a track
    without tags. k is capped at N - 1; with fewer than 2 tracks every value is NaN."""
    tagged = np.asarray(targets) > 0
    if len(embeddings) != len(tagged):
        raise ValueError(f"{len(embeddings)} embeddings for {len(tagged)} target rows")
    precision = np.full(len(tagged), np.nan)
    if len(tagged) < 2:
        return precision
    neighbours = nearest_others(embeddings, min(k, len(tagged) - 1))
    shared = np.stack([(tagged[column] & tagged).any(axis=1) for column in neighbours.T], axis=1)
    has_tags = tagged.any(axis=1)
    precision[has_tags] = shared[has_tags].mean(axis=1)
    return precision


def resampled_macro_scores(
    targets: np.ndarray,
    scores: np.ndarray,
    weights: np.ndarray,
    names: Sequence[str] = METRIC_NAMES,
    neighbour_precision: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """The named metrics x100 under each of B track weightings (B, N): a whole bootstrap in a few array passes.

    Tag-wise metrics weight the tracks inside every tag's ranking; clip-wise ones and precision@k (from the
    per-track `neighbour_precision` of `shared_tag_precision`; NaN without it) are per-track scores, untouched by
    the weights, averaged with the tracks' weights. Rows are processed in chunks that keep the (rows, N, C)
    intermediates near 128 MB.
    """
    unknown = sorted(set(names) - set(METRIC_NAMES))
    if unknown:
        raise KeyError(f"unknown metrics {unknown}; choose from {METRIC_NAMES}")
    targets, scores = np.asarray(targets), np.asarray(scores, dtype=np.float64)
    weights = np.atleast_2d(np.asarray(weights, dtype=np.float64))
    values: dict[str, np.ndarray] = {}
    if any(name.endswith("tagwise") for name in names):
        ranked = _rank_columns(targets, scores)
        chunk = max(1, (1 << 24) // max(1, targets.size))
        parts = [_weighted_per_column(ranked, weights[i : i + chunk]) for i in range(0, len(weights), chunk)]
        values["roc_auc_tagwise"] = _macro(np.concatenate([roc for roc, _ in parts]))
        values["pr_auc_tagwise"] = _macro(np.concatenate([ap for _, ap in parts]))
    if any(name.endswith("clipwise") for name in names):
        unit = np.ones((1, targets.shape[1]))
        per_track_roc, per_track_ap = _weighted_per_column(_rank_columns(targets.T, scores.T), unit)
        values["roc_auc_clipwise"] = _macro(np.broadcast_to(per_track_roc, weights.shape), weights)
        values["pr_auc_clipwise"] = _macro(np.broadcast_to(per_track_ap, weights.shape), weights)
    if PRECISION_AT_K in names:
        per_track = np.full(targets.shape[0], np.nan) if neighbour_precision is None else neighbour_precision
        values[PRECISION_AT_K] = _macro(np.broadcast_to(per_track, weights.shape), weights)
    return {name: values[name] for name in names}


def macro_scores(
    targets: np.ndarray,
    scores: np.ndarray,
    names: Sequence[str] = METRIC_NAMES,
    neighbour_precision: np.ndarray | None = None,
) -> dict[str, float]:
    """The named metrics of METRIC_NAMES, x100, every track counting once."""
    unit = np.ones((1, np.asarray(targets).shape[0]))
    resampled = resampled_macro_scores(targets, scores, unit, names, neighbour_precision)
    return {name: float(value[0]) for name, value in resampled.items()}


def _single_class_count(targets: np.ndarray) -> int:
    """How many columns hold one class only (no defined AUC)."""
    positives = targets.sum(axis=0)
    return int(((positives == 0) | (positives == targets.shape[0])).sum())


def tagging_scores(
    targets: np.ndarray, scores: np.ndarray, neighbour_precision: np.ndarray | None = None
) -> TaggingScores:
    """Score predictions (N, C) against multi-hot targets (N, C): tag-wise and clip-wise macro AUCs x100, and
    precision@k x100 from the tracks' `neighbour_precision` (N,) when given."""
    targets = np.asarray(targets)
    scores = np.asarray(scores, dtype=np.float64)
    if targets.shape != scores.shape or targets.ndim != 2:
        raise ValueError(f"targets {targets.shape} and scores {scores.shape} must both be (N, C)")
    if not np.isin(targets, (0, 1)).all():
        raise ValueError("targets must be multi-hot (only 0 and 1)")
    if not np.isfinite(scores).all():
        raise ValueError("scores contain NaN or infinite values: check the probe's training")
    if neighbour_precision is not None and np.shape(neighbour_precision) != (targets.shape[0],):
        raise ValueError(f"neighbour_precision {np.shape(neighbour_precision)} must hold one value per track (N,)")
    return TaggingScores(
        **macro_scores(targets, scores, neighbour_precision=neighbour_precision),
        skipped_tags=_single_class_count(targets),
        skipped_clips=_single_class_count(targets.T),
    )
