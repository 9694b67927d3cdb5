"""Ragged chunk embeddings: packing, track averages, chunk-to-track index and subsets."""

import numpy as np
import pytest

from musicssl.downstream.labelled_embeddings import LabelledEmbeddings, TaskEmbeddings


def _ragged() -> LabelledEmbeddings:
    tracks = [np.array([[0.0, 2.0], [2.0, 4.0]]), np.array([[10.0, 10.0]]), np.array([[1.0, 1.0]] * 3)]
    return LabelledEmbeddings.from_chunks(tracks, np.array([[1, 0], [0, 1], [1, 1]]))


def test_track_embeddings_average_each_tracks_chunks() -> None:
    data = _ragged()
    np.testing.assert_allclose(data.track_embeddings(), [[1.0, 3.0], [10.0, 10.0], [1.0, 1.0]])
    np.testing.assert_array_equal(data.chunk_track_index(), [0, 0, 1, 2, 2, 2])
    assert (data.num_tracks, data.dim, data.num_tags) == (3, 2, 2)


def test_subset_keeps_each_selected_tracks_chunks_and_targets_in_order() -> None:
    subset = _ragged().subset(np.array([2, 0]))
    np.testing.assert_array_equal(subset.offsets, [0, 3, 5])
    np.testing.assert_allclose(subset.chunks, [[1, 1], [1, 1], [1, 1], [0, 2], [2, 4]])
    np.testing.assert_array_equal(subset.targets, [[1, 1], [1, 0]])


def test_from_tracks_is_one_chunk_per_track() -> None:
    data = LabelledEmbeddings.from_tracks(np.arange(6.0).reshape(3, 2), np.eye(3))
    np.testing.assert_allclose(data.track_embeddings(), np.arange(6.0).reshape(3, 2))
    assert data.chunks.dtype == np.float32


def test_inconsistent_inputs_are_rejected() -> None:
    with pytest.raises(ValueError, match="non-empty"):
        LabelledEmbeddings.from_chunks([np.zeros((0, 2))], np.zeros((1, 1)))
    with pytest.raises(ValueError, match="offsets"):
        LabelledEmbeddings(np.zeros((2, 2), np.float32), np.array([0, 2]), np.zeros((2, 1), np.float32))
    split = LabelledEmbeddings.from_tracks(np.zeros((2, 2)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="2 tag names"):
        TaskEmbeddings("toy", ("a", "b"), split, split, split)
