"""The collapse alarm: thresholds on the collapse diagnostics that tell the user, during training, that a run collapses.

`trainer.diagnostics` measures the embeddings of a batch every `--diagnostics-every` steps; this module turns
those readings into named signals, each fired at most once per run:

- ``effective_rank``: the effective rank (RankMe) fell below ``min_rank_fraction`` of its highest reading so
  far (the first reading, to start with): the embeddings span fewer and fewer dimensions (dimensional collapse).
  A fraction and not a fixed rank, because the attainable rank depends on the batch and the embedding size.
- ``embedding_std``: the mean per-dimension std of the L2-normalised embeddings fell below ``min_std_ratio``
  times ``1 / sqrt(D)``, its value for isotropic embeddings: every input maps to nearly one point.
- ``cosine``: the positive (two views of a track) and negative (different tracks) cosines are both above
  ``max_cosine``: different tracks look as alike as two views of one track.
- ``prototype_usage`` (clustering): the entropy of the teacher's prototype assignments over a batch fell below
  ``min_usage_fraction`` of ``log min(K, N)``, N the batch's assignments (2 views x batch size): a batch of N
  assignments cannot reach log K when N < K, so that is the attainable ceiling.

:class:`CollapseAlarm` is pure (floats in, :class:`Firing` out), so it is unit-tested on constructed readings
and takes the same decisions on every rank when every rank feeds it the same readings; its state (the peak
rank, what fired when) goes into checkpoints, so a resumed run neither forgets its reference nor warns twice.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class CollapseConfig:
    """Thresholds of the collapse alarm, checked at every diagnostics step; 0 switches a signal off
    (``max_cosine``: above 1)."""

    min_rank_fraction: float = 0.6
    """Fire when the effective rank falls below this fraction of its peak (the BYOL run of issue 14, whose
    probe ended below random weights, went from 16.7 to 9.2, a fraction of 0.55)."""
    min_std_ratio: float = 0.1
    """Fire when the mean per-dimension std of the normalised embeddings falls below this multiple of
    1 / sqrt(D) (a random ResNet reads about 0.5; 0.1 means their mean pairwise cosine is about 0.99)."""
    max_cosine: float = 0.99
    """Fire when the positive and the negative cosine both exceed this (a random ResNet reads about 0.7)."""
    min_usage_fraction: float = 0.7
    """Fire when the prototype usage entropy falls below this fraction of log min(K, 2 x batch size) (the
    clustering run of issue 14 read 2.9 nats at batch 64, 0.6 of log 128)."""


MEANING = {
    "effective_rank": "the embeddings span fewer and fewer dimensions (dimensional collapse)",
    "embedding_std": "every dimension of the normalised embeddings barely varies over the batch: the backbone "
    "maps every input to nearly one point",
    "cosine": "different tracks look as alike as two views of one track (complete collapse)",
    "prototype_usage": "the teacher assigns the batch to a few prototypes only (prototype collapse)",
}

REMEDIES = {
    "contrastive": "a lower --optim.base-lr, a larger --batch-size (more negatives), another --contrastive.temperature",
    "byol": "a lower --optim.base-lr, a slower EMA teacher (--byol.momentum-start closer to 1), a larger --batch-size",
    "clustering": "a lower --optim.base-lr, a slower EMA teacher (--clustering.momentum-start closer to 1), "
    "a Sinkhorn-Knopp teacher (--clustering.teacher-normalization sinkhorn), faster centering (a lower "
    "--clustering.center-momentum), a less sharp teacher (a higher --clustering.teacher-temperature)",
    "barlow_twins": "a lower --optim.base-lr, a larger --batch-size, a larger --barlow-twins.off-diagonal-weight",
    "vicreg": "a lower --optim.base-lr, a larger --vicreg.variance-weight, a larger --batch-size",
}


@dataclass(frozen=True)
class Firing:
    """One signal crossing its threshold: which, when, the reading and the threshold it crossed."""

    signal: str
    step: int
    value: float
    threshold: float
    reading: str
    """The reading against its threshold, in words (e.g. ``effective rank 2.76 < 0.6 x peak 11.55 = 6.93``)."""

    def warning(self, pretext: str) -> str:
        """The line printed for the user: signal, step, reading, what it means and what usually helps."""
        return (
            f"COLLAPSE WARNING at step {self.step}: {self.signal}: {self.reading}; {MEANING[self.signal]}. "
            f"What usually helps for {pretext}: {REMEDIES[pretext]}. --stop-on-collapse stops such a run."
        )


class CollapseAlarm:
    """Feeds on the diagnostics of each diagnostics step and returns the signals that fire for the first time."""

    def __init__(
        self, config: CollapseConfig, embedding_dim: int, batch_size: int, num_prototypes: int | None = None
    ) -> None:
        """``num_prototypes``: K of the clustering pretext (None: no prototype signal); ``batch_size``: the global
        batch, whose 2 views are the assignments that the usage entropy counts."""
        self.config = config
        self.isotropic_std = 1.0 / math.sqrt(embedding_dim)
        self.usage_ceiling = math.log(min(num_prototypes, 2 * batch_size)) if num_prototypes else None
        self.peak_rank: float | None = None
        self.fired: dict[str, int] = {}
        """Signal -> step it fired at."""

    def observe(self, step: int, diagnostics: Mapping[str, float]) -> list[Firing]:
        """Check one reading of `trainer.diagnostics` (plus the pretext's extra metrics); the new firings.

        Missing or non-finite readings are skipped, and a signal that fired once stays silent for the run.
        """
        config = self.config
        readings = {key: value for key, value in diagnostics.items() if math.isfinite(value)}
        firings: list[Firing] = []

        def check(signal: str, reading: float, threshold: float, fires: bool, words: str) -> None:
            if fires and signal not in self.fired:
                self.fired[signal] = step
                firings.append(Firing(signal, step, reading, threshold, words))

        if "effective_rank" in readings:
            rank = readings["effective_rank"]
            if self.peak_rank is not None:
                threshold = config.min_rank_fraction * self.peak_rank
                words = f"effective rank {rank:.3g} < {config.min_rank_fraction} x peak {self.peak_rank:.3g}"
                check("effective_rank", rank, threshold, rank < threshold, f"{words} = {threshold:.3g}")
            self.peak_rank = rank if self.peak_rank is None else max(self.peak_rank, rank)
        if "embedding_std_mean" in readings:
            std, threshold = readings["embedding_std_mean"], config.min_std_ratio * self.isotropic_std
            words = f"mean per-dimension std {std:.3g} < {config.min_std_ratio} / sqrt(D) = {threshold:.3g}"
            check("embedding_std", std, threshold, std < threshold, words)
        if "positive_cosine" in readings and "negative_cosine" in readings:
            positive, negative = readings["positive_cosine"], readings["negative_cosine"]
            words = f"positive cosine {positive:.4f} and negative cosine {negative:.4f} both > {config.max_cosine}"
            lower = min(positive, negative)
            check("cosine", lower, config.max_cosine, lower > config.max_cosine, words)
        if self.usage_ceiling is not None and "prototype_usage_entropy" in readings:
            entropy, threshold = readings["prototype_usage_entropy"], config.min_usage_fraction * self.usage_ceiling
            words = (
                f"prototype usage entropy {entropy:.3g} nats < {config.min_usage_fraction} x "
                f"log min(K, 2 x batch) = {threshold:.3g}"
            )
            check("prototype_usage", entropy, threshold, entropy < threshold, words)
        return firings

    def state_dict(self) -> dict[str, Any]:
        return {"peak_rank": self.peak_rank, "fired": dict(self.fired)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.peak_rank = state["peak_rank"]
        self.fired = dict(state["fired"])
