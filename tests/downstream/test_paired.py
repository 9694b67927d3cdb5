"""Paired bootstrap of metric differences: known differences are found, identical predictions tie."""

import numpy as np
import pytest

from musicssl.downstream.paired import PairedConfig, ProbePredictions, paired_bootstrap

NUM_TRACKS, NUM_TAGS = 60, 5


def _perfect() -> ProbePredictions:
    """Predictions that rank every tag's positives above its negatives (ROC-AUC 100 on every tag)."""
    rng = np.random.default_rng(3)
    targets = (rng.random((NUM_TRACKS, NUM_TAGS)) < 0.4).astype(np.float32)
    targets[:2] = [[1] * NUM_TAGS, [0] * NUM_TAGS]  # every tag has both classes
    scores = targets + 0.5 * rng.random(targets.shape)
    return ProbePredictions(tuple(f"t{i}" for i in range(NUM_TRACKS)), targets, scores)


def test_a_known_difference_is_found_with_an_interval_above_zero() -> None:
    good = _perfect()
    worse_scores = good.scores.copy()
    worse_scores[:, 0] = -worse_scores[:, 0]  # tag 0 ranked upside down: its ROC-AUC is 0 instead of 100
    worse = ProbePredictions(good.track_ids, good.targets, worse_scores)

    found = paired_bootstrap(good, worse, PairedConfig(num_resamples=200))["roc_auc_tagwise"]
    assert found.observed == pytest.approx(100 / NUM_TAGS)
    # In every resample the reversed tag has AUC 0 and the others 100, so the difference is 100 / C.
    assert found.low == pytest.approx(100 / NUM_TAGS) and found.high == pytest.approx(100 / NUM_TAGS)
    assert found.p_value == 0.0 and found.num_resamples == 200
    assert "p < 0.005" in found.sentence("good", "worse") and "+20.00" in found.sentence("good", "worse")

    reverse = paired_bootstrap(worse, good, PairedConfig(num_resamples=200))["roc_auc_tagwise"]
    assert reverse.observed == pytest.approx(-100 / NUM_TAGS) and reverse.p_value == 1.0


def test_noisier_predictions_lose_with_an_interval_that_excludes_zero() -> None:
    good = _perfect()
    rng = np.random.default_rng(0)
    noisy = ProbePredictions(good.track_ids, good.targets, good.scores + rng.normal(scale=0.6, size=good.scores.shape))
    found = paired_bootstrap(good, noisy)
    for metric in ("roc_auc_tagwise", "pr_auc_tagwise"):
        assert 0 < found[metric].low < found[metric].observed < found[metric].high
        assert found[metric].p_value < 0.025


def test_identical_predictions_differ_by_zero_with_p_one_half() -> None:
    same = _perfect()
    for difference in paired_bootstrap(same, same, PairedConfig(num_resamples=50)).values():
        assert difference.observed == difference.mean == difference.low == difference.high == 0.0
        assert difference.p_value == 0.5


def test_the_same_seed_gives_the_same_interval_and_other_test_sets_are_refused() -> None:
    a = _perfect()
    b = ProbePredictions(a.track_ids, a.targets, a.scores[::-1].copy())
    first, again = (paired_bootstrap(a, b, PairedConfig(num_resamples=30, seed=4)) for _ in range(2))
    assert first == again
    other_tracks = ProbePredictions(tuple(reversed(a.track_ids)), a.targets, a.scores)
    with pytest.raises(ValueError, match="same test tracks"):
        paired_bootstrap(a, other_tracks)
    with pytest.raises(ValueError, match="same \\(N, C\\) test set"):
        ProbePredictions(a.track_ids[:3], a.targets, a.scores)
    with pytest.raises(ValueError, match=">= 10 resamples"):
        PairedConfig(num_resamples=5)


def test_precision_at_k_is_paired_on_the_same_draws_and_left_out_without_per_track_values() -> None:
    base = _perfect()
    high = np.where(np.arange(NUM_TRACKS) % 2 == 0, 1.0, 0.5)  # per-track precision of two backbones' embeddings
    a = ProbePredictions(base.track_ids, base.targets, base.scores, high)
    b = ProbePredictions(base.track_ids, base.targets, base.scores, high - 0.25)
    found = paired_bootstrap(a, b, PairedConfig(num_resamples=100))
    # every track is 0.25 better with a, so every resample's difference is 25 points, whatever it draws
    assert found["precision_at_k"].observed == pytest.approx(25.0)
    assert found["precision_at_k"].low == pytest.approx(25.0) and found["precision_at_k"].p_value == 0.0
    assert found["roc_auc_tagwise"].observed == 0.0  # the probes' predictions are the same
    assert "precision_at_k" not in paired_bootstrap(a, base, PairedConfig(num_resamples=20))
    with pytest.raises(ValueError, match="neighbour precision"):
        ProbePredictions(base.track_ids, base.targets, base.scores, high[:3])
