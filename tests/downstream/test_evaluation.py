"""Evaluation of a task: one result per training subset, each scored on the full test set."""

import numpy as np

from musicssl.downstream.bootstrap import BootstrapConfig
from musicssl.downstream.evaluation import evaluate_task
from musicssl.downstream.labelled_embeddings import LabelledEmbeddings, TaskEmbeddings
from musicssl.downstream.limited_data import LimitedDataConfig
from musicssl.downstream.probes import probe_config


def _task() -> TaskEmbeddings:
    rng = np.random.default_rng(0)
    directions = rng.normal(size=(6, 2))

    def split(num_tracks: int) -> LabelledEmbeddings:
        tracks = rng.normal(size=(num_tracks, 6))
        return LabelledEmbeddings.from_tracks(tracks, tracks @ directions > 0)

    return TaskEmbeddings("toy", ("rock", "jazz"), split(40), split(20), split(30))


def test_limited_data_yields_each_fraction_and_draw_scored_on_the_whole_test_set() -> None:
    probe = probe_config("paper", max_epochs=2, steps_per_epoch=2, learning_rate=1e-2)
    results = list(
        evaluate_task(
            _task(),
            probe,
            BootstrapConfig(num_resamples=3),
            LimitedDataConfig(fractions=(0.25, 1.0), draws=2),
        )
    )
    assert [(r.fraction, r.draw, r.num_train_tracks) for r in results] == [
        (0.25, 0, 10),
        (0.25, 1, 10),
        (1.0, 0, 40),
        (1.0, 1, 40),
    ]
    assert len({result.probe.seed for result in results}) == 4
    assert all(len(result.bootstrap.resamples) == 3 for result in results)
    assert all(result.full_test.skipped_tags == 0 and result.task == "toy" for result in results)


def test_without_limited_data_one_probe_is_trained_on_all_tracks_with_the_configured_seed() -> None:
    probe = probe_config("paper", max_epochs=1, steps_per_epoch=1, seed=42)
    (result,) = evaluate_task(_task(), probe, BootstrapConfig(num_resamples=2))
    assert (result.fraction, result.draw, result.num_train_tracks, result.probe.seed) == (1.0, 0, 40, 42)
    assert len(result.history.valid_loss) == 1
