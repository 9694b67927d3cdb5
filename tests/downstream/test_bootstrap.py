"""Bootstrap of the test metrics: resample size, reproducibility from the seed, summary statistics."""

import numpy as np
import pytest

from musicssl.downstream.bootstrap import BootstrapConfig, bootstrap_scores, resample_size
from musicssl.downstream.metrics import METRIC_NAMES


def _predictions(num_tracks: int = 40) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    targets = (rng.random((num_tracks, 5)) < 0.4).astype(float)
    return targets, targets + rng.normal(scale=0.8, size=targets.shape)


def test_same_seed_gives_identical_resamples_and_another_seed_differs() -> None:
    targets, scores = _predictions()
    precision = np.linspace(0.0, 1.0, len(targets))  # per-track precision@k: resampled with the same draws
    first = bootstrap_scores(targets, scores, BootstrapConfig(num_resamples=6, seed=7), precision)
    again = bootstrap_scores(targets, scores, BootstrapConfig(num_resamples=6, seed=7), precision)
    other = bootstrap_scores(targets, scores, BootstrapConfig(num_resamples=6, seed=8), precision)
    assert first.resamples == again.resamples
    for metric in ("roc_auc_tagwise", "precision_at_k"):
        assert not np.array_equal(first.metric_values(metric), other.metric_values(metric))


def test_precision_at_k_of_a_resample_is_the_mean_of_its_tracks_values() -> None:
    targets, scores = _predictions()
    precision = np.linspace(0.0, 1.0, len(targets))
    result = bootstrap_scores(targets, scores, BootstrapConfig(fraction=1.0, num_resamples=2), precision)
    assert result.metric_values("precision_at_k") == pytest.approx([50.0, 50.0])
    assert np.isnan(bootstrap_scores(targets, scores, BootstrapConfig(num_resamples=2)).resamples[0].precision_at_k)


def test_summary_is_mean_and_population_std_of_the_resample_values() -> None:
    targets, scores = _predictions()
    result = bootstrap_scores(targets, scores, BootstrapConfig(num_resamples=5))
    assert len(result.resamples) == 5
    values = result.metric_values("pr_auc_tagwise")
    assert len(np.unique(values)) > 1
    assert result.mean()["pr_auc_tagwise"] == pytest.approx(values.mean())
    assert result.std()["pr_auc_tagwise"] == pytest.approx(values.std(ddof=0))
    assert set(result.mean()) == set(METRIC_NAMES)


def test_full_fraction_resamples_all_tracks_so_every_resample_is_the_same() -> None:
    targets, scores = _predictions()
    result = bootstrap_scores(targets, scores, BootstrapConfig(fraction=1.0, num_resamples=3))
    assert result.std()["roc_auc_clipwise"] == pytest.approx(0.0)


def test_resample_size_is_half_rounded_and_at_least_two() -> None:
    assert resample_size(101, 0.5) == 51
    assert resample_size(100, 0.5) == 50
    assert resample_size(3, 0.1) == 2
    with pytest.raises(ValueError, match="at least 2"):
        resample_size(1, 0.5)


@pytest.mark.parametrize(("fraction", "resamples"), [(0.0, 5), (1.5, 5), (0.5, 0)])
def test_invalid_config_is_rejected(fraction: float, resamples: int) -> None:
    with pytest.raises(ValueError, match="bootstrap"):
        BootstrapConfig(fraction=fraction, num_resamples=resamples)
