"""Probes on synthetic embeddings: they learn a separable problem, stop early, average chunks, are seeded."""

from collections.abc import Iterator

import numpy as np
import pytest
import torch

from musicssl.downstream.labelled_embeddings import LabelledEmbeddings
from musicssl.downstream.metrics import tagging_scores
from musicssl.downstream.probes import PROTOCOLS, ProbeConfig, Standardiser, fit_probe, probe_config, train_probe
from musicssl.downstream.quick_eval import quick_evaluate

DIM, TAGS = 12, 3
DIRECTIONS = np.random.default_rng(0).normal(size=(DIM, TAGS))


@pytest.fixture(autouse=True, scope="module")
def _single_thread() -> Iterator[None]:
    """Tiny probes gain nothing from threads, and on a shared CPU threads contend: run them on one."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def _separable(num_tracks: int, seed: int, chunks_per_track: int = 1) -> LabelledEmbeddings:
    """Tracks whose tags are the signs of linear functions of the track vector; chunks add noise around it."""
    rng = np.random.default_rng(seed)
    tracks = rng.normal(size=(num_tracks, DIM))
    targets = (tracks @ DIRECTIONS > 0).astype(np.float32)
    offset_and_scale = 4.0 * tracks + 10.0  # standardisation must undo this
    chunks = [track + rng.normal(scale=0.5, size=(chunks_per_track, DIM)) for track in offset_and_scale]
    return LabelledEmbeddings.from_chunks(chunks, targets)


def _test_auc(config: ProbeConfig, chunks_per_track: int = 1) -> float:
    train = _separable(300, seed=1, chunks_per_track=chunks_per_track)
    valid = _separable(80, seed=2, chunks_per_track=chunks_per_track)
    test = _separable(150, seed=3, chunks_per_track=chunks_per_track)
    probe = train_probe(train, valid, config)
    return tagging_scores(test.targets, probe.predict(test)).roc_auc_tagwise


def test_linear_probe_with_paper_schedule_learns_a_separable_problem() -> None:
    config = probe_config("paper", max_epochs=8, steps_per_epoch=10, batch_size=64, learning_rate=1e-2)
    assert _test_auc(config) > 90.0


def test_mlp_probe_on_chunks_with_thesis_schedule_learns_a_separable_problem() -> None:
    config = probe_config("thesis", hidden_dim=32, dropout=0.1, max_epochs=15, batch_size=64, learning_rate=1e-2)
    assert config.aggregation == "chunk" and config.weight_decay == 1e-6
    assert _test_auc(config, chunks_per_track=3) > 90.0


def test_chunk_mode_predicts_the_mean_of_chunk_probabilities() -> None:
    train, valid = _separable(60, seed=4, chunks_per_track=2), _separable(20, seed=5, chunks_per_track=2)
    probe = train_probe(train, valid, probe_config("thesis", max_epochs=2))
    chunk_probabilities = probe._probabilities(valid.chunks)
    np.testing.assert_allclose(probe.predict(valid), chunk_probabilities.reshape(20, 2, TAGS).mean(axis=1))


def test_early_stopping_halts_on_rising_validation_loss_and_keeps_the_best_weights() -> None:
    rng = np.random.default_rng(6)
    noise_train = LabelledEmbeddings.from_tracks(rng.normal(size=(40, 30)), rng.random((40, 4)) < 0.5)
    noise_valid = LabelledEmbeddings.from_tracks(rng.normal(size=(40, 30)), rng.random((40, 4)) < 0.5)
    config = probe_config("thesis", hidden_dim=128, learning_rate=1e-2, early_stopping_patience=3, max_epochs=100)
    probe = train_probe(noise_train, noise_valid, config)
    history = probe.history
    assert history.stopped_early
    assert len(history.valid_loss) == history.best_epoch + 3 + 1 < 100
    probabilities = np.clip(probe.predict(noise_valid), 1e-7, 1 - 1e-7)
    targets = noise_valid.targets
    kept_loss = -np.mean(targets * np.log(probabilities) + (1 - targets) * np.log(1 - probabilities))
    assert kept_loss == pytest.approx(min(history.valid_loss), rel=1e-4)


def test_training_is_deterministic_for_a_seed_and_changes_with_it() -> None:
    train, valid = _separable(50, seed=7), _separable(20, seed=8)
    config = probe_config("paper", hidden_dim=16, dropout=0.2, max_epochs=2, steps_per_epoch=3, batch_size=16)
    first, again = train_probe(train, valid, config), train_probe(train, valid, config)
    other = train_probe(train, valid, probe_config("paper", **{**config.__dict__, "seed": 1}))
    np.testing.assert_array_equal(first.predict(valid), again.predict(valid))
    assert not np.allclose(first.predict(valid), other.predict(valid))


def test_standardiser_uses_training_statistics_and_tolerates_constant_dimensions() -> None:
    train = np.array([[1.0, 5.0], [3.0, 5.0]])
    standardiser = Standardiser.fit(train)
    np.testing.assert_allclose(standardiser(train), [[-1.0, 0.0], [1.0, 0.0]])
    np.testing.assert_allclose(standardiser(np.array([[5.0, 6.0]])), [[3.0, 1.0]])


def test_protocols_follow_the_papers_and_reject_unknown_names() -> None:
    paper = PROTOCOLS["paper"]
    assert (paper.batch_size, paper.max_epochs, paper.steps_per_epoch, paper.hidden_dim) == (
        256,
        25,
        128,
        None,
    )
    thesis = PROTOCOLS["thesis"]
    assert (thesis.plateau_factor, thesis.plateau_patience, thesis.learning_rate) == (0.1, 5, 1e-3)
    with pytest.raises(ValueError, match="unknown probe protocol 'clmr'"):
        probe_config("clmr")
    with pytest.raises(ValueError, match="aggregation"):
        probe_config("paper", aggregation="max")


@pytest.mark.parametrize("method", ["knn", "ridge"])
def test_quick_evaluation_scores_a_separable_problem_well(method: str) -> None:
    reference, queries = _separable(300, seed=9, chunks_per_track=2), _separable(100, seed=10)
    scores = quick_evaluate(reference, queries, method=method, k=15)
    assert scores.roc_auc_tagwise > 90.0


def test_marble_protocol_is_marbles_constrained_probe() -> None:
    marble = PROTOCOLS["marble"]
    assert (marble.hidden_dim, marble.dropout, marble.batch_size, marble.max_epochs) == (512, 0.2, 64, 100)
    assert (marble.plateau_factor, marble.plateau_patience, marble.early_stopping_patience) == (0.5, 3, 10)
    assert marble.select_on == "roc_auc" and marble.aggregation == "track" and marble.weight_decay == 0.0
    assert marble.learning_rates == (5e-5, 1e-4, 5e-4, 1e-3, 5e-3, 1e-2)


def test_marble_selects_the_learning_rate_with_the_best_validation_roc_auc() -> None:
    train, valid = _separable(300, seed=1), _separable(80, seed=2)
    grid = (1e-6, 1e-2)  # a rate too small to move in 4 epochs, and one that learns the task
    config = probe_config("marble", max_epochs=4, learning_rates=grid, hidden_dim=16)
    probe, scores = fit_probe(train, valid, config)
    assert set(scores) == set(grid)
    assert scores[1e-2] > scores[1e-6] + 5  # the grid really separates the candidates
    assert probe.config.learning_rate == 1e-2 == max(scores, key=scores.get)
    assert probe.history.valid_score("roc_auc") == scores[1e-2]
    assert len(probe.history.valid_roc_auc) == len(probe.history.valid_loss) > 0
    # the kept epoch is the best on validation ROC-AUC, not on validation loss
    assert probe.history.valid_roc_auc[probe.history.best_epoch] == max(probe.history.valid_roc_auc)
    single, none = fit_probe(train, valid, probe_config("paper", max_epochs=2, steps_per_epoch=5))
    assert none == {} and single.history.valid_roc_auc == []
