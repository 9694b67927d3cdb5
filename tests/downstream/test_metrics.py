"""Tagging metrics against hand-computed values and against scikit-learn, ties and skipped tags included; the
precision@k of a shared tag against a hand-computed example."""

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from musicssl.downstream.metrics import (
    average_precision_per_column,
    resampled_macro_scores,
    roc_auc_per_column,
    shared_tag_precision,
    tagging_scores,
)
from musicssl.downstream.similarity import nearest_others

# Five tracks in the plane with tags a, b, c: 0 and 1 point along x, 2 and 3 along y, 4 the other way; 4 has no tag.
PLANE = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9], [-1.0, 0.0]])
PLANE_TAGS = np.array([[1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 1, 1], [0, 0, 0]])


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
    precision = np.where(rng.random(30) < 0.2, np.nan, rng.random(30))  # per track; NaN: a track without tags
    weighted = resampled_macro_scores(targets, scores, counts, neighbour_precision=precision)
    for row, draw in enumerate(draws):
        repeated = tagging_scores(targets[draw], scores[draw], precision[draw]).values()
        for name, value in repeated.items():
            assert weighted[name][row] == pytest.approx(value), name


def test_shared_tag_precision_matches_a_hand_computed_example() -> None:
    # 2 nearest others by cosine: 0 -> {1, 3}, 1 -> {0, 3}, 2 -> {3, 1}, 3 -> {2, 1}. Shared tags: 0 with 1 only
    # (a); 1 with 0 (a) and 3 (b); 2 with 3 and 1 (b); 3 with 2 and 1 (b). Track 4 has no tag: skipped.
    precision = shared_tag_precision(PLANE, PLANE_TAGS, k=2)
    np.testing.assert_allclose(precision, [0.5, 1.0, 1.0, 1.0, np.nan])
    scores = tagging_scores(PLANE_TAGS, np.zeros(PLANE_TAGS.shape), precision)
    assert scores.precision_at_k == pytest.approx(100 * 3.5 / 4)
    # k beyond the other tracks is capped: 0's 4 others share a tag once (track 1)
    assert shared_tag_precision(PLANE, PLANE_TAGS)[0] == pytest.approx(0.25)


def test_a_track_is_never_its_own_neighbour_even_beside_a_duplicate() -> None:
    rows = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.7, 0.7]])
    assert nearest_others(rows, 1)[:3, 0].tolist() == [1, 0, 3]
    assert np.isnan(shared_tag_precision(rows[:1], np.ones((1, 1)))).all()  # a single track has no neighbours
    with pytest.raises(ValueError, match="k must be in"):
        nearest_others(rows, 4)
