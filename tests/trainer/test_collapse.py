"""Tests for trainer.collapse: each signal fires on a collapsed reading, healthy readings stay quiet, once per run.

The readings are constructed; the healthy one is what a random width-8 ResNet reads on the test shards
(D = 1024, batch 8). The alarm in real training runs is tested in tests/trainer/test_train_collapse.py.
"""

from __future__ import annotations

import math

import pytest

from musicssl.trainer.collapse import MEANING, REMEDIES, CollapseAlarm, CollapseConfig
from musicssl.trainer.pretexts import PRETEXTS

DIM, BATCH, PROTOTYPES = 1024, 8, 64
HEALTHY = {
    "embedding_std_mean": 0.016,  # 0.51 / sqrt(D)
    "embedding_std_min": 0.007,
    "effective_rank": 11.5,
    "positive_cosine": 0.73,
    "negative_cosine": 0.72,
    "prototypes_in_use": 12.0,
    "prototype_usage_entropy": 2.39,  # of a ceiling log min(64, 16) = 2.77
}
COLLAPSED = {
    "effective_rank": {"effective_rank": 6.0},  # < 0.6 x 11.5 = 6.9
    "embedding_std": {"embedding_std_mean": 0.002},  # < 0.1 / 32 = 0.0031
    "cosine": {"positive_cosine": 0.999, "negative_cosine": 0.995},
    "prototype_usage": {"prototype_usage_entropy": 1.5, "prototypes_in_use": 3.0},  # < 0.7 x 2.77 = 1.94
}


def alarm(config: CollapseConfig | None = None) -> CollapseAlarm:
    return CollapseAlarm(config or CollapseConfig(), DIM, BATCH, PROTOTYPES)


def test_healthy_readings_with_noise_stay_quiet() -> None:
    detector = alarm()
    for step, wobble in enumerate((1.0, 0.97, 1.03, 0.9, 1.1, 0.95), start=1):
        reading = {key: value * wobble for key, value in HEALTHY.items()}
        assert detector.observe(10 * step, reading) == []
    assert detector.fired == {}


@pytest.mark.parametrize("signal", sorted(COLLAPSED))
def test_each_signal_fires_once_with_its_step_value_and_threshold(signal: str) -> None:
    detector = alarm()
    assert detector.observe(100, HEALTHY) == []
    (firing,) = detector.observe(200, HEALTHY | COLLAPSED[signal])
    assert (firing.signal, firing.step) == (signal, 200)
    expected_threshold = {
        "effective_rank": 0.6 * 11.5,
        "embedding_std": 0.1 / math.sqrt(DIM),
        "cosine": 0.99,
        "prototype_usage": 0.7 * math.log(16),
    }[signal]
    assert firing.threshold == pytest.approx(expected_threshold)
    assert firing.value < firing.threshold or (signal == "cosine" and firing.value > firing.threshold)
    assert detector.observe(300, HEALTHY | COLLAPSED[signal]) == []  # still collapsed: no second warning
    assert detector.fired == {signal: 200}


def test_a_fully_collapsed_reading_fires_every_signal_in_order() -> None:
    detector = alarm()
    detector.observe(1, HEALTHY)
    collapsed = HEALTHY | {key: value for changes in COLLAPSED.values() for key, value in changes.items()}
    assert [f.signal for f in detector.observe(2, collapsed)] == list(COLLAPSED)


def test_the_rank_reference_is_the_peak_reading_so_far() -> None:
    detector = alarm()
    assert detector.observe(1, {"effective_rank": 10.0}) == []
    assert detector.observe(2, {"effective_rank": 20.0}) == []  # rising is healthy; the reference rises
    assert detector.observe(3, {"effective_rank": 12.5}) == []  # above 0.6 x 20
    (firing,) = detector.observe(4, {"effective_rank": 11.5})
    assert firing.threshold == pytest.approx(12.0) and "peak 20" in firing.reading


def test_the_first_rank_reading_only_sets_the_reference() -> None:
    assert alarm().observe(1, {"effective_rank": 1.0}) == []


def test_similar_positives_alone_are_not_collapse() -> None:
    """Contrastive training pulls the two views together (positive cosine near 1) and negatives apart."""
    assert alarm().observe(1, HEALTHY | {"positive_cosine": 0.999, "negative_cosine": 0.2}) == []


def test_prototype_signal_needs_the_number_of_prototypes() -> None:
    detector = CollapseAlarm(CollapseConfig(), DIM, BATCH, num_prototypes=None)
    assert detector.observe(1, HEALTHY | {"prototype_usage_entropy": 0.0}) == []


def test_the_usage_ceiling_is_log_k_once_a_batch_has_more_assignments_than_prototypes() -> None:
    detector = CollapseAlarm(CollapseConfig(), DIM, batch_size=4096, num_prototypes=PROTOTYPES)
    (firing,) = detector.observe(1, {"prototype_usage_entropy": 2.8})  # < 0.7 x log 64 = 2.91
    assert firing.threshold == pytest.approx(0.7 * math.log(PROTOTYPES))


def test_non_finite_readings_are_skipped_and_keep_the_reference() -> None:
    detector = alarm()
    detector.observe(1, HEALTHY)
    assert detector.observe(2, {key: math.nan for key in HEALTHY}) == []
    assert detector.peak_rank == 11.5
    assert [f.signal for f in detector.observe(3, HEALTHY | COLLAPSED["effective_rank"])] == ["effective_rank"]


def test_zero_thresholds_switch_signals_off() -> None:
    off = CollapseConfig(min_rank_fraction=0.0, min_std_ratio=0.0, max_cosine=1.1, min_usage_fraction=0.0)
    detector = alarm(off)
    detector.observe(1, HEALTHY)
    collapsed = {"embedding_std_mean": 0.0, "effective_rank": 1.0, "positive_cosine": 1.0, "negative_cosine": 1.0}
    assert detector.observe(2, collapsed | {"prototype_usage_entropy": 0.0}) == []


def test_state_round_trip_keeps_the_reference_and_what_fired() -> None:
    detector = alarm()
    detector.observe(1, HEALTHY)
    detector.observe(2, HEALTHY | COLLAPSED["cosine"])
    resumed = alarm()
    resumed.load_state_dict(detector.state_dict())
    assert resumed.observe(3, HEALTHY | COLLAPSED["cosine"]) == []  # fired before the checkpoint
    assert [f.signal for f in resumed.observe(4, HEALTHY | COLLAPSED["effective_rank"])] == ["effective_rank"]
    assert resumed.fired == {"cosine": 2, "effective_rank": 4}


def test_every_pretext_has_remedies_and_the_warning_names_signal_step_reading_and_remedy() -> None:
    assert set(REMEDIES) == set(PRETEXTS)
    detector = alarm()
    detector.observe(100, HEALTHY)
    (firing,) = detector.observe(200, HEALTHY | COLLAPSED["effective_rank"])
    message = firing.warning("byol")
    assert message.startswith("COLLAPSE WARNING at step 200: effective_rank: effective rank 6 < 0.6 x peak 11.5")
    assert MEANING["effective_rank"] in message and REMEDIES["byol"] in message
    assert "--byol.momentum-start" in message and "--stop-on-collapse" in message
