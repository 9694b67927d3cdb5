"""Cheap tagging evaluation for use during pre-training: cosine kNN or closed-form ridge on track embeddings.

No gradient steps: a few hundred labelled tracks are scored in milliseconds, so the trainer can watch
downstream ROC-AUC / mAP every few epochs. Scores are not comparable to the probes' (no validation set, no
bootstrap); they only track progress of one run.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from musicssl.downstream.labelled_embeddings import LabelledEmbeddings
from musicssl.downstream.metrics import TaggingScores, tagging_scores
from musicssl.downstream.probes import Standardiser
from musicssl.downstream.similarity import unit_rows

QuickMethod = Literal["knn", "ridge"]


def knn_scores(reference: np.ndarray, reference_targets: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """Tag scores of queries: similarity-weighted mean of the targets of their k cosine-nearest references."""
    if not 1 <= k <= len(reference):
        raise ValueError(f"k must be in [1, {len(reference)}] (the number of reference tracks), got {k}")
    similarity = unit_rows(queries) @ unit_rows(reference).T
    neighbours = np.argpartition(-similarity, k - 1, axis=1)[:, :k]
    weights = np.clip(np.take_along_axis(similarity, neighbours, axis=1), 0.0, None) + 1e-6
    return np.einsum("qk,qkc->qc", weights, reference_targets[neighbours]) / weights.sum(axis=1, keepdims=True)


def ridge_scores(reference: np.ndarray, reference_targets: np.ndarray, queries: np.ndarray, alpha: float) -> np.ndarray:
    """Tag scores of queries from a ridge regression onto the targets, fitted on standardised references.

    Standardised inputs have zero mean, so the unpenalised intercept is the targets' mean.
    """
    standardiser = Standardiser.fit(reference)
    inputs = standardiser(reference)
    target_mean = reference_targets.mean(axis=0)
    gram = inputs.T @ inputs + alpha * np.eye(inputs.shape[1], dtype=np.float32)
    weights = np.linalg.solve(gram, inputs.T @ (reference_targets - target_mean))
    return standardiser(queries) @ weights + target_mean


def quick_evaluate(
    reference: LabelledEmbeddings,
    queries: LabelledEmbeddings,
    method: QuickMethod = "knn",
    k: int = 10,
    alpha: float = 1.0,
) -> TaggingScores:
    """Fit on `reference` tracks, score `queries` tracks (chunks averaged per track), return the metrics."""
    reference_x, queries_x = reference.track_embeddings(), queries.track_embeddings()
    if method == "knn":
        predictions = knn_scores(reference_x, reference.targets, queries_x, min(k, reference.num_tracks))
    elif method == "ridge":
        predictions = ridge_scores(reference_x, reference.targets, queries_x, alpha)
    else:
        raise ValueError(f"unknown quick evaluation method {method!r}; choose 'knn' or 'ridge'")
    return tagging_scores(queries.targets, predictions)
