"""Build the two views a pretext compares from temporal pairs: as they are, or augmented by the CLMR chain.

``augmented_crop`` (CLMR, the thesis) compares two crops of a track drawn independently of each other (thesis
3.3.1: "The independently chosen segments ... could overlap or be very disjoint"; Spijkervet/CLMR main.py runs
``RandomResizedCrop`` once per view on the whole clip). The loader gives it such crops when it draws its
pairs with :func:`pair_gaps`: any start-to-start distance, so the positive is uniform over the track, like the
anchor; the views are then both segments, each augmented.
"""

from __future__ import annotations

from enum import Enum

import torch

from musicssl.trainer.augment.chain import AugmentationChain


class ViewMode(str, Enum):
    """How the (B, 2, S) anchor/positive pairs become the two views of a training example."""

    TEMPORAL = "temporal"  # ICASSP 2024 paper: the two segments of the pair, untouched
    AUGMENTED_CROP = "augmented_crop"  # CLMR / thesis: two independent crops of the track, each augmented
    AUGMENTED_TEMPORAL = "augmented_temporal"  # both segments of the pair, each augmented independently

    @classmethod
    def parse(cls, value: str | ViewMode) -> ViewMode:
        """The mode named `value`, with the valid names in the error when it is unknown."""
        try:
            return cls(value)
        except ValueError:
            valid = ", ".join(mode.value for mode in cls)
            raise ValueError(f"unknown view mode {value!r}: choose one of {valid}") from None


INDEPENDENT_MAX_GAP_SECONDS = 1e6
"""Largest start-to-start distance for ``augmented_crop`` pairs: longer than any track (11.6 days)."""


def pair_gaps(mode: str | ViewMode, min_gap_seconds: float, max_gap_seconds: float) -> tuple[float, float]:
    """The (min, max) anchor-to-positive distance the loader draws pairs with for view mode ``mode``: the
    configured range, or for ``augmented_crop`` any distance (two independent crops; the positive is uniform
    over the track, with the anchor's own start counted twice among ~10^5 or more)."""
    if ViewMode.parse(mode) is ViewMode.AUGMENTED_CROP:
        return 0.0, INDEPENDENT_MAX_GAP_SECONDS
    return min_gap_seconds, max_gap_seconds


def make_views(
    pairs: torch.Tensor,
    mode: str | ViewMode,
    chain: AugmentationChain | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """(B, 2, S) pairs -> (B, 2, S_out) views; S_out = S for "temporal", the chain's crop length otherwise.

    Both augmented modes augment each segment of the pair on its own; they differ in how the loader drew the
    pair (:func:`pair_gaps`)."""
    mode = ViewMode.parse(mode)
    if pairs.ndim < 3 or pairs.shape[1] != 2:
        raise ValueError(f"expected pairs of shape (B, 2, ...), got {tuple(pairs.shape)}")
    if mode is ViewMode.TEMPORAL:
        return pairs  # waveforms (B, 2, S), or log-mel (B, 2, 1, n_mels, frames) from a log-mel set
    if pairs.ndim != 3:
        raise ValueError(f"view mode {mode.value!r} augments waveforms (B, 2, S), got {tuple(pairs.shape)}")
    if chain is None:
        raise ValueError(f"view mode {mode.value!r} augments, so it needs an AugmentationChain; got None")
    batch, _, length = pairs.shape
    return chain(pairs.reshape(batch * 2, length), generator).reshape(batch, 2, -1)
