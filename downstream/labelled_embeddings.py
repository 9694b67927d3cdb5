"""Labelled embeddings of a split: one ragged set of chunk embeddings per track, with multi-hot targets.

Both aggregation modes read the same structure. Chunks of all tracks are stored back to back in one
(total_chunks, D) float32 array with `offsets` (N + 1,) marking where each track starts (CSR layout), so a
track-level matrix (the paper: average over windows) and a chunk-level matrix with its track index (the
thesis/CLMR: train on chunks, average chunk predictions per track) are both one vectorised call away.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LabelledEmbeddings:
    """Chunk embeddings of N tracks in CSR layout, with their (N, C) multi-hot targets and track ids.

    The ids (from the shard set's metadata) let two evaluations prove they scored the same test tracks, which a
    paired comparison needs; sets built from bare arrays have none (None).
    """

    chunks: np.ndarray
    offsets: np.ndarray
    targets: np.ndarray
    track_ids: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        """Reject inconsistent shapes early, naming the offending array."""
        if self.chunks.ndim != 2:
            raise ValueError(f"chunks must be (total_chunks, D), got shape {self.chunks.shape}")
        if self.targets.ndim != 2:
            raise ValueError(f"targets must be multi-hot (N, C), got shape {self.targets.shape}")
        n_tracks = self.targets.shape[0]
        if self.offsets.shape != (n_tracks + 1,):
            raise ValueError(f"offsets must have N + 1 = {n_tracks + 1} entries, got shape {self.offsets.shape}")
        counts = np.diff(self.offsets)
        if self.offsets[0] != 0 or self.offsets[-1] != len(self.chunks) or np.any(counts < 1):
            raise ValueError("offsets must start at 0, end at len(chunks) and give every track >= 1 chunk")
        if self.track_ids is not None and len(self.track_ids) != n_tracks:
            raise ValueError(f"{len(self.track_ids)} track ids for {n_tracks} tracks")

    @classmethod
    def from_tracks(cls, embeddings: np.ndarray, targets: np.ndarray) -> LabelledEmbeddings:
        """Wrap track-level embeddings (N, D): each track is a single chunk."""
        embeddings = np.asarray(embeddings, dtype=np.float32)
        if embeddings.ndim != 2:
            raise ValueError(f"track embeddings must be (N, D), got shape {embeddings.shape}")
        offsets = np.arange(len(embeddings) + 1, dtype=np.int64)
        return cls(embeddings, offsets, np.asarray(targets, dtype=np.float32))

    @classmethod
    def from_chunks(
        cls, per_track: Sequence[np.ndarray], targets: np.ndarray, track_ids: Sequence[str] | None = None
    ) -> LabelledEmbeddings:
        """Pack a ragged list of (n_chunks_i, D) arrays, one per track, with targets (N, C) and optional ids."""
        if len(per_track) == 0:
            raise ValueError("from_chunks needs at least one track")
        arrays = [np.asarray(track, dtype=np.float32) for track in per_track]
        bad = [i for i, track in enumerate(arrays) if track.ndim != 2 or len(track) == 0]
        if bad:
            raise ValueError(f"tracks {bad[:5]} are not non-empty (n_chunks, D) arrays")
        lengths = np.array([len(track) for track in arrays], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(lengths)])
        ids = None if track_ids is None else tuple(track_ids)
        return cls(np.concatenate(arrays), offsets, np.asarray(targets, dtype=np.float32), ids)

    @property
    def num_tracks(self) -> int:
        """Number of tracks N."""
        return self.targets.shape[0]

    @property
    def dim(self) -> int:
        """Embedding size D."""
        return self.chunks.shape[1]

    @property
    def num_tags(self) -> int:
        """Number of tags C."""
        return self.targets.shape[1]

    def chunk_track_index(self) -> np.ndarray:
        """Track index of every chunk, (total_chunks,) int64."""
        return np.repeat(np.arange(self.num_tracks), np.diff(self.offsets))

    def track_embeddings(self) -> np.ndarray:
        """Average each track's chunks: (N, D), the paper's track-level embedding."""
        return average_per_track(self.chunks, self.offsets)

    def subset(self, track_indices: np.ndarray) -> LabelledEmbeddings:
        """Select tracks (with all their chunks) by index, in the given order."""
        track_indices = np.asarray(track_indices, dtype=np.int64)
        starts, ends = self.offsets[track_indices], self.offsets[track_indices + 1]
        lengths = ends - starts
        chunk_index = np.repeat(starts - np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths)
        chunk_index += np.arange(lengths.sum())
        offsets = np.concatenate([[0], np.cumsum(lengths)])
        ids = None if self.track_ids is None else tuple(self.track_ids[i] for i in track_indices)
        return LabelledEmbeddings(self.chunks[chunk_index], offsets, self.targets[track_indices], ids)


def average_per_track(values: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Mean of the rows of `values` within each [offsets[i], offsets[i+1]) segment."""
    sums = np.add.reduceat(values, offsets[:-1], axis=0)
    return (sums / np.diff(offsets)[:, None]).astype(values.dtype, copy=False)


@dataclass(frozen=True)
class TaskEmbeddings:
    """The three splits of one downstream task and the names of its C tags."""

    name: str
    tag_names: tuple[str, ...]
    train: LabelledEmbeddings
    valid: LabelledEmbeddings
    test: LabelledEmbeddings

    def __post_init__(self) -> None:
        """Check that every split has the same tags and embedding size."""
        for split_name in ("train", "valid", "test"):
            split: LabelledEmbeddings = getattr(self, split_name)
            if split.num_tags != len(self.tag_names):
                raise ValueError(
                    f"task {self.name!r}: {split_name} targets have {split.num_tags} columns "
                    f"but {len(self.tag_names)} tag names were given"
                )
            if split.dim != self.train.dim:
                raise ValueError(
                    f"task {self.name!r}: {split_name} embeddings are {split.dim}-d, train ones {self.train.dim}-d"
                )
