"""Tests for downstream.extract_task: window counts and shapes per track, targets, cache hits and invalidation."""

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from musicssl.downstream.extract_task import (
    ExtractionSettings,
    embed_tracks,
    extract_task,
    multi_hot,
    read_vocabulary,
    weights_hash,
)
from musicssl.sharding.shard_set import ShardSet
from tests.support.labelled_shard_factory import LabelledTrack, balanced_tracks, tiny_backbone, write_labelled_set

SPLIT_OF_LENGTH = {0.4: "train", 1.0: "train", 2.5: "valid", 3.2: "test"}


class CountingBackbone(nn.Module):
    """Wraps a backbone and counts the windows it embeds."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.embed_dim, self.sample_rate, self.num_samples = (
            inner.embed_dim,
            inner.sample_rate,
            inner.num_samples,
        )
        self.windows_seen = 0

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        self.windows_seen += len(waveform)
        return self.inner(waveform)


def settings(cache_dir: Path | None, batch_size: int = 3) -> ExtractionSettings:
    return ExtractionSettings(batch_size=batch_size, device="cpu", cache_dir=cache_dir, progress=False)


def test_every_track_gets_one_embedding_per_full_window(tmp_path: Path) -> None:
    tracks = [
        LabelledTrack(seconds, ["low"] if i % 2 else ["high", "pulse"], SPLIT_OF_LENGTH[seconds])
        for i, seconds in enumerate([0.4, 1.0, 2.5, 3.2, 1.0, 2.5, 3.2])
    ]
    data = write_labelled_set(tmp_path / "set", tracks, tracks_per_shard=3)
    backbone, recipe = tiny_backbone()
    task = extract_task(backbone, recipe, ShardSet.open(data), "toy", settings=settings(None))
    assert task.tag_names == ("high", "low", "pulse")
    assert np.diff(task.train.offsets).tolist() == [1, 1, 1]  # a 0.4 s track gets one padded window
    assert np.diff(task.valid.offsets).tolist() == [2, 2]
    assert np.diff(task.test.offsets).tolist() == [3, 3]
    assert task.train.chunks.shape == (3, backbone.embed_dim)
    np.testing.assert_array_equal(task.train.targets, [[1, 0, 1], [0, 1, 0], [1, 0, 1]])
    assert task.test.track_embeddings().shape == (2, backbone.embed_dim)


def test_cross_track_batches_give_the_same_embeddings_as_one_track_at_a_time() -> None:
    backbone, _ = tiny_backbone()
    rng = np.random.default_rng(0)
    tracks = [rng.standard_normal((n, backbone.num_samples)).astype(np.float32) * 0.1 for n in (1, 4, 2)]
    batched = list(embed_tracks(backbone, tracks, batch_size=3))
    alone = [next(embed_tracks(backbone, [track], batch_size=8)) for track in tracks]
    assert [len(e) for e in batched] == [1, 4, 2]
    for together, single in zip(batched, alone, strict=True):
        np.testing.assert_allclose(together, single, atol=1e-4)


def test_second_run_hits_the_cache_and_new_weights_miss_it(tmp_path: Path) -> None:
    data = write_labelled_set(tmp_path / "set", balanced_tracks({"train": 4, "valid": 2, "test": 2}))
    inner, recipe = tiny_backbone()
    backbone = CountingBackbone(inner)
    cache = tmp_path / "cache"
    first = extract_task(backbone, recipe, ShardSet.open(data), "toy", settings=settings(cache))
    assert backbone.windows_seen == 16
    assert len(list(cache.glob("*.npz"))) == 1
    second = extract_task(backbone, recipe, ShardSet.open(data), "renamed", settings=settings(cache))
    assert backbone.windows_seen == 16  # nothing embedded again
    assert second.name == "renamed" and second.tag_names == first.tag_names
    np.testing.assert_array_equal(second.test.chunks, first.test.chunks)
    np.testing.assert_array_equal(second.valid.offsets, first.valid.offsets)

    with torch.no_grad():
        next(inner.parameters()).add_(0.01)
    changed = extract_task(backbone, recipe, ShardSet.open(data), "toy", settings=settings(cache))
    assert backbone.windows_seen == 32
    assert len(list(cache.glob("*.npz"))) == 2
    assert not np.allclose(changed.test.chunks, first.test.chunks)


def test_a_given_vocabulary_fixes_the_target_order_and_gets_its_own_cache_entry(tmp_path: Path) -> None:
    data = write_labelled_set(tmp_path / "set", balanced_tracks({"train": 4, "valid": 2, "test": 2}))
    (tmp_path / "tags.txt").write_text("pulse\nlow\n\n")
    vocabulary = read_vocabulary(tmp_path / "tags.txt")
    backbone, recipe = tiny_backbone()
    cache = tmp_path / "cache"
    extract_task(backbone, recipe, ShardSet.open(data), "toy", settings=settings(cache))
    task = extract_task(backbone, recipe, ShardSet.open(data), "toy", vocabulary, settings=settings(cache))
    assert task.tag_names == ("pulse", "low")
    np.testing.assert_array_equal(task.train.targets, [[0, 1], [1, 0], [0, 0], [1, 1]])
    assert len(list(cache.glob("*.npz"))) == 2


def test_weights_hash_follows_weights_and_recipe() -> None:
    backbone, recipe = tiny_backbone(seed=0)
    same, _ = tiny_backbone(seed=0)
    other, _ = tiny_backbone(seed=1)
    assert weights_hash(backbone, recipe) == weights_hash(same, recipe)
    assert weights_hash(backbone, recipe) != weights_hash(other, recipe)
    renamed = type(recipe)(recipe.name, {**recipe.kwargs, "f_max": 7000.0})
    assert weights_hash(backbone, recipe) != weights_hash(backbone, renamed)


def test_multi_hot_ignores_tags_outside_the_vocabulary() -> None:
    np.testing.assert_array_equal(multi_hot([["a", "z"], []], ("b", "a")), [[0, 1], [0, 0]])


def test_wrong_sample_rate_says_how_to_rebuild_the_shards(tmp_path: Path) -> None:
    data = write_labelled_set(tmp_path / "set", balanced_tracks({"train": 2, "valid": 1, "test": 1}))
    backbone, recipe = tiny_backbone()
    backbone.sample_rate = 22050
    with pytest.raises(ValueError, match="--sample-rate 22050"):
        extract_task(backbone, recipe, ShardSet.open(data), "toy", settings=settings(None))


def test_tracks_without_a_split_are_refused_with_the_track_named(tmp_path: Path) -> None:
    tracks = [*balanced_tracks({"train": 2, "valid": 1, "test": 1}), LabelledTrack(1.0, ["low"], None)]
    data = write_labelled_set(tmp_path / "set", tracks)
    backbone, recipe = tiny_backbone()
    with pytest.raises(ValueError, match="track 't004' has split None"):
        extract_task(backbone, recipe, ShardSet.open(data), "toy", settings=settings(None))


def test_duplicate_tags_in_the_vocabulary_file_are_refused(tmp_path: Path) -> None:
    (tmp_path / "tags.txt").write_text("rock\npop\nrock\n")
    with pytest.raises(ValueError, match=r"tags.txt.*duplicates \['rock'\]"):
        read_vocabulary(tmp_path / "tags.txt")
