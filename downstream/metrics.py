"""Music tagging metrics: macro ROC-AUC and PR-AUC (average precision), tag-wise and clip-wise, x100.

Tag-wise scores one tag over all tracks and averages over tags (the papers' "macro"); clip-wise scores one
track over all tags and averages over tracks (the thesis). A tag (or track) whose targets hold a single class
has no defined AUC: it is skipped and counted. Both scores are computed column-wise in vectorised numpy (the
bootstrap calls them thousands of times) and match scikit-learn's `roc_auc_score` / `average_precision_score`,
ties included.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

METRIC_NAMES = ("roc_auc_tagwise", "pr_auc_tagwise", "roc_auc_clipwise", "pr_auc_clipwise")


@dataclass(frozen=True)
class TaggingScores:
    """Macro ROC-AUC / PR-AUC x100, tag-wise and clip-wise, with how many tags/tracks were skipped."""

    roc_auc_tagwise: float
    pr_auc_tagwise: float
    roc_auc_clipwise: float
    pr_auc_clipwise: float
    skipped_tags: int
    skipped_clips: int

    def values(self) -> dict[str, float]:
        """The four metrics by name (see METRIC_NAMES)."""
        return {name: value for name, value in asdict(self).items() if name in METRIC_NAMES}


def _two_class_columns(targets: np.ndarray) -> np.ndarray:
    """Mask of the columns holding both positives and negatives."""
    positives = targets.sum(axis=0)
    return (positives > 0) & (positives < targets.shape[0])


@dataclass(frozen=True)
class _RankedColumns:
    """Each column sorted by decreasing score, with the first and last position of every tie group."""

    targets: np.ndarray
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
        group_start=np.maximum.accumulate(starts, axis=0),
        group_end=np.minimum.accumulate(ends[::-1], axis=0)[::-1],
    )


def roc_auc_per_column(targets: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """ROC-AUC of each column (Mann-Whitney U with average ranks for ties); NaN where one class only."""
    ranked = _rank_columns(targets, scores)
    n_rows = targets.shape[0]
    ascending_rank = n_rows - (ranked.group_start + ranked.group_end) / 2
    n_pos = ranked.targets.sum(axis=0)
    n_neg = n_rows - n_pos
    with np.errstate(divide="ignore", invalid="ignore"):
        auc = ((ascending_rank * ranked.targets).sum(axis=0) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
    return np.where(_two_class_columns(targets), auc, np.nan)


def average_precision_per_column(targets: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Average precision of each column, sum over thresholds of (R_k - R_k-1) P_k; NaN where one class only.

    Tied scores form one threshold: each positive contributes the precision measured at the end of its
    tie group, which is scikit-learn's step-wise definition (no interpolation).
    """
    ranked = _rank_columns(targets, scores)
    n_rows = targets.shape[0]
    precision = np.cumsum(ranked.targets, axis=0) / np.arange(1, n_rows + 1)[:, None]
    precision_at_group_end = np.take_along_axis(precision, ranked.group_end, axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        ap = (ranked.targets * precision_at_group_end).sum(axis=0) / ranked.targets.sum(axis=0)
    return np.where(_two_class_columns(targets), ap, np.nan)


def _macro(per_column: np.ndarray) -> float:
    """Mean over the defined columns, x100; NaN when none is defined."""
    defined = per_column[~np.isnan(per_column)]
    return float(100.0 * defined.mean()) if len(defined) else float("nan")


def tagging_scores(targets: np.ndarray, scores: np.ndarray) -> TaggingScores:
    """Score predictions (N, C) against multi-hot targets (N, C): tag-wise and clip-wise macro AUCs x100."""
    targets = np.asarray(targets)
    scores = np.asarray(scores, dtype=np.float64)
    if targets.shape != scores.shape or targets.ndim != 2:
        raise ValueError(f"targets {targets.shape} and scores {scores.shape} must both be (N, C)")
    if not np.isin(targets, (0, 1)).all():
        raise ValueError("targets must be multi-hot (only 0 and 1)")
    if not np.isfinite(scores).all():
        raise ValueError("scores contain NaN or infinite values: check the probe's training")
    return TaggingScores(
        roc_auc_tagwise=_macro(roc_auc_per_column(targets, scores)),
        pr_auc_tagwise=_macro(average_precision_per_column(targets, scores)),
        roc_auc_clipwise=_macro(roc_auc_per_column(targets.T, scores.T)),
        pr_auc_clipwise=_macro(average_precision_per_column(targets.T, scores.T)),
        skipped_tags=int((~_two_class_columns(targets)).sum()),
        skipped_clips=int((~_two_class_columns(targets.T)).sum()),
    )
