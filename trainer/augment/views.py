"""Build the two views a pretext compares from temporal pairs: as they are, or augmented by the CLMR chain."""

from __future__ import annotations

from enum import Enum

import torch

from trainer.augment.chain import AugmentationChain


class ViewMode(str, Enum):
    """How the (B, 2, S) anchor/positive pairs become the two views of a training example."""

    TEMPORAL = "temporal"  # ICASSP 2024 paper: the two segments of the pair, untouched
    AUGMENTED_CROP = "augmented_crop"  # CLMR / thesis: two independently augmented copies of the anchor
    AUGMENTED_TEMPORAL = "augmented_temporal"  # both segments of the pair, each augmented independently

    @classmethod
    def parse(cls, value: str | ViewMode) -> ViewMode:
        """The mode named `value`, with the valid names in the error when it is unknown."""
        try:
            return cls(value)
        except ValueError:
            valid = ", ".join(mode.value for mode in cls)
            raise ValueError(f"unknown view mode {value!r}: choose one of {valid}") from None


def make_views(
    pairs: torch.Tensor,
    mode: str | ViewMode,
    chain: AugmentationChain | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """(B, 2, S) pairs -> (B, 2, S_out) views; S_out = S for "temporal", the chain's crop length otherwise."""
    mode = ViewMode.parse(mode)
    if pairs.ndim != 3 or pairs.shape[1] != 2:
        raise ValueError(f"expected pairs of shape (B, 2, S), got {tuple(pairs.shape)}")
    if mode is ViewMode.TEMPORAL:
        return pairs
    if chain is None:
        raise ValueError(f"view mode {mode.value!r} augments, so it needs an AugmentationChain; got None")
    batch, _, length = pairs.shape
    if mode is ViewMode.AUGMENTED_CROP:
        flat = pairs[:, 0].repeat_interleave(2, dim=0)
    else:
        flat = pairs.reshape(batch * 2, length)
    return chain(flat, generator).reshape(batch, 2, -1)
