"""Tagging metrics against hand-computed values and against scikit-learn, ties and skipped tags included."""

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from musicssl.downstream.metrics import (
    average_precision_per_column,
    resampled_macro_scores,
    roc_auc_per_column,
    tagging_scores,
)


def test_single_column_matches_hand_computed_values() -> None:
    targets = np.array([[1], [0], [1], [0]])
    scores = np.array([[0.9], [0.8], [0.4], [0.1]])
    # positives beat 2 and 1 of the 2 negatives -> 3/4; precision at the positives: 1/1, 2/3
    assert roc_auc_per_column(targets, scores)[0] == pytest.approx(0.75)
    assert average_precision_per_column(targets, scores)[0] == pytest.approx((1 + 2 / 3) / 2)


def test_tied_scores_count_half_and_share_one_threshold() -> None:
    targets = np.array([[1], [0], [1], [0]])
    scores = np.array([[0.5], [0.5], [0.2], [0.1]])
    # pairs: (0.5 vs 0.5) = 0.5, (0.5 vs 0.1) = 1, (0.2 vs 0.5) = 0, (0.2 vs 0.1) = 1 -> 2.5 / 4
    assert roc_auc_per_column(targets, scores)[0] == pytest.approx(0.625)
    # the tie group {0.5, 0.5} is one threshold with precision 1/2, then 0.2 with precision 2/3
    assert average_precision_per_column(targets, scores)[0] == pytest.approx((0.5 + 2 / 3) / 2)


def test_tagwise_and_clipwise_macro_scores_with_skipped_tag_and_clip() -> None:
    targets = np.array([[1, 0, 0], [0, 1, 0], [1, 1, 0], [0, 0, 0]])
    scores = np.array([[0.9, 0.2, 0.5], [0.8, 0.7, 0.1], [0.4, 0.6, 0.5], [0.1, 0.3, 0.9]])
    result = tagging_scores(targets, scores)
    # tags: 0 -> AUC 0.75, AP 5/6; 1 -> AUC 1, AP 1; 2 has no positive -> skipped
    assert result.roc_auc_tagwise == pytest.approx(100 * (0.75 + 1.0) / 2)
    assert result.pr_auc_tagwise == pytest.approx(100 * (5 / 6 + 1.0) / 2)
    assert result.skipped_tags == 1
    # clips: 0 -> AUC 1, AP 1; 1 -> AUC 0.5, AP 0.5; 2 -> AUC 0.5, AP 5/6; 3 has no positive -> skipped
    assert result.roc_auc_clipwise == pytest.approx(100 * (1.0 + 0.5 + 0.5) / 3)
    assert result.pr_auc_clipwise == pytest.approx(100 * (1.0 + 0.5 + 5 / 6) / 3)
    assert result.skipped_clips == 1


def test_per_column_scores_match_scikit_learn_on_random_tied_inputs() -> None:
    rng = np.random.default_rng(3)
    targets = (rng.random((60, 8)) < 0.3).astype(int)
    scores = rng.integers(0, 6, size=(60, 8)).astype(float)  # many ties
    roc, ap = roc_auc_per_column(targets, scores), average_precision_per_column(targets, scores)
    for column in range(8):
        assert roc[column] == pytest.approx(roc_auc_score(targets[:, column], scores[:, column]))
        assert ap[column] == pytest.approx(average_precision_score(targets[:, column], scores[:, column]))


def test_all_single_class_gives_nan_and_counts_everything_skipped() -> None:
    result = tagging_scores(np.ones((3, 2)), np.random.default_rng(0).random((3, 2)))
    assert np.isnan(result.roc_auc_tagwise) and np.isnan(result.pr_auc_clipwise)
    assert (result.skipped_tags, result.skipped_clips) == (2, 3)


@pytest.mark.parametrize(
    ("targets", "scores", "message"),
    [
        (np.zeros((3, 2)), np.zeros((3, 3)), "must both be"),
        (np.full((2, 2), 2.0), np.zeros((2, 2)), "multi-hot"),
        (np.eye(2), np.array([[np.nan, 0.0], [0.0, 1.0]]), "NaN"),
    ],
)
def test_bad_inputs_are_rejected_with_a_reason(targets: np.ndarray, scores: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        tagging_scores(targets, scores)


def test_weighted_resamples_equal_the_metrics_of_repeated_rows() -> None:
    rng = np.random.default_rng(5)
    targets = (rng.random((30, 6)) < 0.3).astype(int)
    scores = rng.integers(0, 5, size=(30, 6)).astype(float)  # ties within and across repeated rows
    draws = rng.integers(0, 30, size=(4, 30))
    counts = np.stack([np.bincount(draw, minlength=30) for draw in draws]).astype(float)
    weighted = resampled_macro_scores(targets, scores, counts)
    for row, draw in enumerate(draws):
        repeated = tagging_scores(targets[draw], scores[draw]).values()
        for name, value in repeated.items():
            assert weighted[name][row] == pytest.approx(value), name
