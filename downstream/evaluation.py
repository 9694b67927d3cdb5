"""One downstream evaluation: train a probe on (a subset of) the training split, score the full test split.
The test embeddings' precision@k of a shared tag (`metrics.shared_tag_precision`) is computed once per task and
scored with every probe's results, so that it is logged, bootstrapped and paired like the probe metrics.

This is the audio-free core that `evaluate.py` calls once embeddings are extracted: it takes a
`TaskEmbeddings` and yields one `EvaluationResult` per training subset (a single one for the full training
set, or every (fraction, draw) of the limited-data protocol), each ready for `downstream.tracking`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace

import numpy as np

from musicssl.downstream.bootstrap import BootstrapConfig, BootstrapResult, bootstrap_scores
from musicssl.downstream.labelled_embeddings import TaskEmbeddings
from musicssl.downstream.limited_data import LimitedDataConfig, TrainingSubset, training_subsets
from musicssl.downstream.metrics import TaggingScores, shared_tag_precision, tagging_scores
from musicssl.downstream.paired import ProbePredictions
from musicssl.downstream.probes import ProbeConfig, TrainingHistory, fit_probe


@dataclass(frozen=True)
class EvaluationResult:
    """Scores of one probe: on the whole test set, and bootstrapped; with what it was trained on and how, and its
    test predictions (for paired comparisons with other evaluations of the same test set)."""

    task: str
    fraction: float
    draw: int
    num_train_tracks: int
    probe: ProbeConfig
    bootstrap_config: BootstrapConfig
    full_test: TaggingScores
    bootstrap: BootstrapResult
    history: TrainingHistory
    predictions: ProbePredictions
    learning_rate_scores: dict[float, float] = field(default_factory=dict)
    """Validation score of every learning rate of the probe's grid (empty without a grid); ``probe`` holds the
    chosen one."""


def evaluate_subset(
    task: TaskEmbeddings,
    subset: TrainingSubset,
    probe: ProbeConfig,
    bootstrap: BootstrapConfig,
    neighbour_precision: np.ndarray,
) -> EvaluationResult:
    """Train a probe (seeded by the subset) on the subset's training tracks and score the full test set, with the
    test embeddings' per-track precision@k of a shared tag (the same for every probe of a task)."""
    trained, learning_rate_scores = fit_probe(
        task.train.subset(subset.indices), task.valid, replace(probe, seed=subset.probe_seed)
    )
    predictions = trained.predict(task.test)
    track_ids = task.test.track_ids or tuple(f"test-{i}" for i in range(task.test.num_tracks))  # bare arrays
    return EvaluationResult(
        task=task.name,
        fraction=subset.fraction,
        draw=subset.draw,
        num_train_tracks=len(subset.indices),
        probe=trained.config,
        bootstrap_config=bootstrap,
        full_test=tagging_scores(task.test.targets, predictions, neighbour_precision),
        bootstrap=bootstrap_scores(task.test.targets, predictions, bootstrap, neighbour_precision),
        history=trained.history,
        predictions=ProbePredictions(track_ids, task.test.targets, predictions, neighbour_precision),
        learning_rate_scores=learning_rate_scores,
    )


def evaluate_task(
    task: TaskEmbeddings,
    probe: ProbeConfig,
    bootstrap: BootstrapConfig,
    limited_data: LimitedDataConfig | None = None,
) -> Iterator[EvaluationResult]:
    """Evaluate on the whole training set (limited_data None; seed probe.seed) or on every subset of it."""
    neighbour_precision = shared_tag_precision(task.test.track_embeddings(), task.test.targets)
    if limited_data is None:
        subsets: Iterator[TrainingSubset] = iter([TrainingSubset(1.0, 0, np.arange(task.train.num_tracks), probe.seed)])
    else:
        subsets = training_subsets(task.train.num_tracks, limited_data)
    for subset in subsets:
        yield evaluate_subset(task, subset, probe, bootstrap, neighbour_precision)
