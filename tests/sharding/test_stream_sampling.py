"""Tests for sharding.read.batches.sample_pair_starts and sharding.read.config.PairsConfig: bounds over many draws,
bad input."""

import numpy as np
import pytest

from musicssl.sharding.read.batches import sample_pair_starts
from musicssl.sharding.read.config import PairsConfig
from musicssl.sharding.read.reader import check_loader_arguments


@pytest.mark.parametrize(
    ("num_samples", "crop", "min_gap", "max_gap"),
    [
        (4_000, 400, 400, 1_600),  # long track: every anchor admits both sides
        (1_000, 400, 400, 1_600),  # last start 600 < 2 * min_gap: a hole in the middle has no positive
        (800, 400, 400, 1_600),  # just long enough: exactly the pair (0, 400) and its mirror
        (10_000, 59_049 // 100, 0, 50),  # zero minimum gap
    ],
)
def test_pairs_stay_inside_track_and_gap_bounds(num_samples: int, crop: int, min_gap: int, max_gap: int) -> None:
    rng = np.random.default_rng(0)
    starts = sample_pair_starts(rng, num_samples, crop, min_gap, max_gap, count=20_000)
    assert starts.shape == (20_000, 2)
    assert starts.min() >= 0
    assert starts.max() + crop <= num_samples
    gaps = np.abs(starts[:, 1] - starts[:, 0])
    assert gaps.min() >= min_gap
    assert gaps.max() <= max_gap


def test_positive_falls_on_both_sides_and_anchor_spans_the_track() -> None:
    starts = sample_pair_starts(np.random.default_rng(1), 4_000, 400, 400, 1_600, count=20_000)
    anchor, positive = starts[:, 0], starts[:, 1]
    before = np.mean(positive < anchor)
    assert 0.3 < before < 0.7
    assert anchor.min() == 0
    assert anchor.max() == 4_000 - 400
    # anchor uniform over [0, 3600]: each tenth holds about a tenth of the draws
    counts = np.histogram(anchor, bins=10, range=(0, 3_601))[0]
    assert counts.min() > 0.8 * 2_000


def test_hole_anchors_are_never_drawn() -> None:
    starts = sample_pair_starts(np.random.default_rng(2), 1_000, 400, 400, 1_600, count=5_000)
    anchor = starts[:, 0]
    assert not np.any((anchor > 200) & (anchor < 400))
    assert set(np.unique(anchor[anchor <= 200])) == set(range(201))


def test_track_too_short_for_a_pair_is_refused() -> None:
    with pytest.raises(ValueError, match="too short for a pair"):
        sample_pair_starts(np.random.default_rng(0), 799, 400, 400, 1_600, count=1)


def test_config_lengths_follow_the_sample_rate() -> None:
    config = PairsConfig()
    assert config.crop_length(16_000) == 64_000
    assert config.gap_bounds(16_000) == (64_000, 256_000)
    assert PairsConfig(crop_samples=59_049).crop_length(22_050) == 59_049


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"crop_seconds": 0.0}, "crop_seconds"),
        ({"crop_samples": 0}, "crop_samples"),
        ({"min_gap_seconds": 8.0, "max_gap_seconds": 4.0}, "min_gap_seconds"),
        ({"pairs_per_track": 0}, "pairs_per_track"),
        ({"num_workers": -1}, "num_workers"),
        ({"read_retries": -1}, "read_retries"),
        ({"max_failed_share": 1.5}, "max_failed_share"),
        ({"failure_window": 0}, "failure_window"),
    ],
)
def test_bad_config_is_refused_with_the_field_named(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        PairsConfig(**kwargs)


@pytest.mark.parametrize(
    ("arguments", "message"), [((0, 0, None), "batch_size"), ((8, -1, None), "seed"), ((8, 0, 0), "batches_per_epoch")]
)
def test_bad_loader_arguments_are_refused_with_the_argument_named(
    arguments: tuple[int, int, int | None], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        check_loader_arguments(*arguments)


def test_starts_follow_one_length_per_pair() -> None:
    lengths = np.array([800, 4_000, 1_000] * 2_000)
    starts = sample_pair_starts(np.random.default_rng(3), lengths, 400, 400, 1_600, count=len(lengths))
    assert np.all(starts.max(axis=1) + 400 <= lengths)
    assert np.all(np.abs(starts[:, 1] - starts[:, 0]) >= 400)
    assert starts[lengths == 4_000].max() > 3_000  # long tracks are cropped all along, not at the short ones' range
