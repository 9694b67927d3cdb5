"""View modes turn (B, 2, S) temporal pairs into the two views the pretexts compare."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from musicssl.sharding.read.batches import sample_pair_starts
from musicssl.trainer.augment import AugmentationChain, AugmentConfig, ViewMode, make_views, pair_gaps

CROP = 16384
FLIP_ONLY = AugmentConfig(
    crop_samples=CROP, polarity_p=1, noise_p=0, gain_p=0, filter_p=0, delay_p=0, pitch_p=0, reverb_p=0
)


def pairs(batch: int, length: int) -> torch.Tensor:
    return torch.randn(batch, 2, length, generator=torch.Generator().manual_seed(0))


def test_temporal_mode_is_the_identity() -> None:
    temporal = pairs(3, 1000)
    assert make_views(temporal, "temporal") is temporal


@pytest.mark.parametrize("mode", [ViewMode.AUGMENTED_CROP, ViewMode.AUGMENTED_TEMPORAL])
def test_augmented_modes_give_two_cropped_views_per_pair(mode: ViewMode) -> None:
    views = make_views(pairs(3, CROP + 200), mode, AugmentationChain(AugmentConfig(crop_samples=CROP), seed=0))
    assert views.shape == (3, 2, CROP)
    assert views.dtype == torch.float32
    assert not torch.equal(views[:, 0], views[:, 1])


def test_augmented_crop_views_come_from_the_two_independent_crops() -> None:
    crops = pairs(4, CROP)
    views = make_views(crops, "augmented_crop", AugmentationChain(FLIP_ONLY, seed=0))
    assert torch.equal(views[:, 0], -crops[:, 0])
    assert torch.equal(views[:, 1], -crops[:, 1])  # not a second copy of the first crop


def test_augmented_crop_pairs_are_two_independent_crops_of_the_track() -> None:
    sample_rate, track_seconds = 100, 300
    min_gap, max_gap = pair_gaps("augmented_crop", 4.0, 16.0)
    assert pair_gaps("augmented_temporal", 4.0, 16.0) == (4.0, 16.0)
    starts = sample_pair_starts(
        np.random.default_rng(0), track_seconds * sample_rate, CROP // 1000, round(min_gap * sample_rate),
        math.floor(max_gap * sample_rate), count=20_000,
    )  # fmt: skip
    last = track_seconds * sample_rate - CROP // 1000
    gaps = np.abs(starts[:, 0] - starts[:, 1]) / sample_rate
    assert (gaps < 4).mean() > 0.01 and (gaps > 16).mean() > 0.8  # outside the temporal 4-16 s window
    for column in (0, 1):  # both starts uniform over the track
        assert np.histogram(starts[:, column], bins=4, range=(0, last + 1))[0].min() > 0.23 * len(starts)
    assert abs(np.corrcoef(starts[:, 0], starts[:, 1])[0, 1]) < 0.03


def test_augmented_temporal_views_keep_anchor_and_positive() -> None:
    temporal = pairs(4, CROP)
    views = make_views(temporal, ViewMode.AUGMENTED_TEMPORAL, AugmentationChain(FLIP_ONLY, seed=0))
    assert torch.equal(views, -temporal)


def test_augmented_crop_augments_each_crop_independently() -> None:
    half_flips = replace(FLIP_ONLY, crop_samples=256, polarity_p=0.5)
    same = pairs(400, 256)[:, :1].expand(-1, 2, -1)  # two identical crops: only the augmentation differs
    views = make_views(same, "augmented_crop", AugmentationChain(half_flips, seed=0))
    differ = (views[:, 0] != views[:, 1]).any(dim=1).float().mean()
    assert 0.35 < float(differ) < 0.65


def test_unknown_mode_lists_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="temporal, augmented_crop, augmented_temporal"):
        make_views(pairs(1, 10), "augmented")


def test_augmented_mode_without_chain_is_refused() -> None:
    with pytest.raises(ValueError, match="AugmentationChain"):
        make_views(pairs(1, 10), "augmented_crop")
