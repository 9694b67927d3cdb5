"""Limited-data subsets: exact sizes, distinct and reproducible draws."""

import numpy as np
import pytest

from musicssl.downstream.limited_data import LimitedDataConfig, subset_size, training_subsets


def test_paper_fractions_give_exact_rounded_sizes_four_draws_each() -> None:
    subsets = list(training_subsets(1234, LimitedDataConfig()))
    assert len(subsets) == 5 * 4
    sizes = {subset.fraction: len(subset.indices) for subset in subsets}
    assert sizes == {0.01: 12, 0.05: 62, 0.1: 123, 0.2: 247, 1.0: 1234}
    for subset in subsets:
        assert len(np.unique(subset.indices)) == len(subset.indices)
        assert subset.indices.min() >= 0 and subset.indices.max() < 1234


def test_sizes_round_half_up_and_never_drop_below_one() -> None:
    assert subset_size(250, 0.01) == 3  # 2.5 -> 3, where Python's round gives 2
    assert subset_size(30, 0.01) == 1
    assert subset_size(7, 1.0) == 7


def test_draws_differ_and_repeat_with_the_seed() -> None:
    config = LimitedDataConfig(fractions=(0.1,), draws=4, seed=5)
    draws = [tuple(subset.indices) for subset in training_subsets(500, config)]
    assert len(set(draws)) == 4
    assert draws == [tuple(subset.indices) for subset in training_subsets(500, config)]
    other_seed = [tuple(s.indices) for s in training_subsets(500, LimitedDataConfig((0.1,), 4, seed=6))]
    assert draws != other_seed


def test_full_fraction_draws_differ_by_probe_seed_only() -> None:
    subsets = list(training_subsets(20, LimitedDataConfig(fractions=(1.0,), draws=3)))
    assert all(np.array_equal(subset.indices, np.arange(20)) for subset in subsets)
    assert len({subset.probe_seed for subset in subsets}) == 3


def test_invalid_config_is_rejected() -> None:
    with pytest.raises(ValueError, match="fractions"):
        LimitedDataConfig(fractions=(0.0, 0.5))
    with pytest.raises(ValueError, match="draws"):
        LimitedDataConfig(draws=0)
