"""Cosine similarity between track embeddings: unit-length rows, and every track's exact k nearest other tracks.

One definition for the quick kNN probe (`downstream.quick_eval`), the shared-tag precision of an evaluation
(`downstream.metrics`) and the similarity index (`downstream.neighbours`, which searches unit rows by inner product).
"""

from __future__ import annotations

import numpy as np

BLOCK_BYTES = 64 << 20  # the (rows, N) similarity block of `nearest_others`


def unit_rows(rows: np.ndarray) -> np.ndarray:
    """The rows scaled to unit L2 norm, as float32 (a zero row stays zero): their inner products are cosines."""
    rows = np.asarray(rows, dtype=np.float32)
    return rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), np.float32(1e-12))


def nearest_others(embeddings: np.ndarray, k: int) -> np.ndarray:
    """Indices (N, k) of each row's k most similar other rows by cosine, in no particular order.

    Exact, in blocks of rows whose similarities to all N rows take about BLOCK_BYTES; a row is never its own
    neighbour, even when another row is identical to it.
    """
    unit = unit_rows(embeddings)
    num_rows = len(unit)
    if not 1 <= k < num_rows:
        raise ValueError(f"k must be in [1, {num_rows - 1}] (the number of other tracks), got {k}")
    indices = np.empty((num_rows, k), dtype=np.int64)
    step = max(1, BLOCK_BYTES // (4 * num_rows))
    for start in range(0, num_rows, step):
        block = unit[start : start + step] @ unit.T
        rows = np.arange(len(block))
        block[rows, start + rows] = -np.inf
        indices[start : start + step] = np.argpartition(-block, k - 1, axis=1)[:, :k]
    return indices
