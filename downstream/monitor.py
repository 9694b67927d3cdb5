"""Cheap downstream evaluation during pre-training: kNN tagging scores of a small labelled set, every N steps.

The trainer does not import `downstream` (packages import only to their left), so the entry point builds the
hook and hands it to the training loop, which calls it on rank 0 with the unwrapped backbone:

    hook = QuickProbeHook(ShardSet.open("demo_data/shards"), window=backbone.num_samples,
                          sample_rate=backbone.sample_rate, every_steps=500)
    if hook.due(step):
        metrics = hook(step, backbone)   # {"probe/knn_roc_auc": ..., "probe/knn_pr_auc": ...}

The windows (the first `windows_per_track` of every track) are read once at construction; a call only
embeds them and runs `quick_evaluate` with the valid and test tracks as queries against the train tracks.
Scores are tag-wise macro ROC-AUC / PR-AUC x100; they follow one run's progress and are not comparable to
the probes' (no validation, no bootstrap).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from torch import nn

from musicssl.downstream.extract_task import (
    DEFAULT_BATCH_SIZE,
    embed_tracks,
    labelled_windows,
    multi_hot,
    vocabulary_for,
)
from musicssl.downstream.labelled_embeddings import LabelledEmbeddings
from musicssl.downstream.quick_eval import QuickMethod, quick_evaluate
from musicssl.sharding.shard_set import ShardSet

METRIC_PREFIX = "probe"


class QuickProbeHook:
    """Embeds a small labelled shard set with the current backbone and returns quick tagging metrics."""

    def __init__(
        self,
        shards: ShardSet,
        window: int,
        sample_rate: int,
        every_steps: int,
        windows_per_track: int = 4,
        method: QuickMethod = "knn",
        k: int = 10,
        batch_size: int = DEFAULT_BATCH_SIZE,
        vocabulary: Sequence[str] | None = None,
    ) -> None:
        """Read the first `windows_per_track` windows of `window` samples of every track of the set."""
        if every_steps < 1 or windows_per_track < 1 or batch_size < 1:
            raise ValueError(
                "every_steps, windows_per_track and batch_size must be >= 1, got "
                f"{every_steps}, {windows_per_track}, {batch_size}"
            )
        shards.require_sample_rate(sample_rate)
        tracks = list(labelled_windows(shards, window, windows_per_track))
        self._windows = [windows for windows, _ in tracks]
        tag_lists = [meta.tags for _, meta in tracks]
        self.tag_names = vocabulary_for(tag_lists, vocabulary)
        self._targets = multi_hot(tag_lists, self.tag_names)
        self._is_reference = np.array([meta.split == "train" for _, meta in tracks])
        if self._is_reference.all() or not self._is_reference.any():
            raise ValueError(
                f"{shards.location}: the quick probe needs train tracks (references) and valid or test "
                "tracks (queries); fill the manifest's split column and re-run data_prep"
            )
        self.window = window
        self.every_steps = every_steps
        self.method: QuickMethod = method
        self.k = k
        self.batch_size = batch_size

    def due(self, step: int) -> bool:
        """Whether the hook should run after optimizer step `step`: every `every_steps` steps, and at step 0 (the
        untrained weights, before the first step) so that the curve starts where random weights stand."""
        return step % self.every_steps == 0

    def __call__(self, step: int, backbone: nn.Module) -> dict[str, float]:
        """Metrics of the backbone at training step `step`; every module's train/eval mode is restored."""
        if backbone.num_samples != self.window:
            raise ValueError(
                f"the quick probe read windows of {self.window} samples, the backbone at step {step} takes "
                f"{backbone.num_samples}; build the hook with window=backbone.num_samples"
            )
        modes = [(module, module.training) for module in backbone.modules()]
        backbone.eval()
        try:
            per_track = list(embed_tracks(backbone, self._windows, self.batch_size))
        finally:
            for module, training in modes:
                module.train(training)
        reference, queries = (self._labelled(per_track, self._is_reference == keep) for keep in (True, False))
        scores = quick_evaluate(reference, queries, self.method, k=self.k)
        return {
            f"{METRIC_PREFIX}/{self.method}_roc_auc": scores.roc_auc_tagwise,
            f"{METRIC_PREFIX}/{self.method}_pr_auc": scores.pr_auc_tagwise,
        }

    def _labelled(self, per_track: list[np.ndarray], members: np.ndarray) -> LabelledEmbeddings:
        """The selected tracks' window embeddings with their targets."""
        chosen = np.flatnonzero(members)
        return LabelledEmbeddings.from_chunks([per_track[i] for i in chosen], self._targets[chosen])
