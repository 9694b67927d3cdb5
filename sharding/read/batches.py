"""Where a pair's two crops lie in a track, and the batches pairs travel in from either reader: (B, 2, S) int16
samples, or (B, 2, frames, n_mels) log-mel (`sharding.layout`)."""

from __future__ import annotations

import numpy as np
import torch

TORCH_DTYPES = {"<i2": torch.int16, "<f2": torch.float16, "|u1": torch.uint8}
"""The tensor type a batch of each stored dtype is read into (`sharding.layout`)."""


def sample_pair_starts(
    rng: np.random.Generator, num_samples: int | np.ndarray, crop: int, min_gap: int, max_gap: int, count: int
) -> np.ndarray:
    """(count, 2) start indices (anchor, positive), all crops inside the track, positive min-max gap away.

    `num_samples` is one track's length or one length per pair (then `count` is its length). The anchor is
    uniform over the starts that admit a positive; the positive is uniform over the valid starts on either
    side of it. Raises ValueError for a track shorter than `crop + min_gap`.
    """
    last = np.asarray(num_samples, dtype=np.int64) - crop  # last valid start
    if np.any(last < min_gap):
        raise ValueError(f"track of {np.min(num_samples)} samples is too short for a pair ({crop + min_gap} needed)")
    # anchors with a positive: [0, last - min_gap] and [min_gap, last]; skip the hole between them, if any
    left_count = last - min_gap + 1
    hole = np.maximum(0, min_gap - left_count)
    draw = rng.integers(0, last + 1 - hole, size=count)
    anchor = draw + hole * (draw >= left_count)
    left_low = np.maximum(0, anchor - max_gap)
    left_size = np.maximum(0, anchor - min_gap - left_low + 1)
    right_size = np.maximum(0, np.minimum(last, anchor + max_gap) - (anchor + min_gap) + 1)
    pick = rng.integers(0, left_size + right_size)
    positive = np.where(pick < left_size, left_low + pick, anchor + min_gap + pick - left_size)
    return np.stack([anchor, positive], axis=1)


def empty_batch(shape: tuple[int, ...], dtype: np.dtype) -> torch.Tensor:
    """A batch to fill, in shared memory inside a loader worker so handing it over copies nothing."""
    out = torch.empty(shape, dtype=TORCH_DTYPES[dtype.str])
    if torch.utils.data.get_worker_info() is not None:
        out.share_memory_()
    return out
