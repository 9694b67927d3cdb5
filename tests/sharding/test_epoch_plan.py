"""sharding.read.epoch_plan: every item once per epoch, equal disjoint slices per rank and worker, seeded order."""

from collections import Counter

import numpy as np
import pytest

from musicssl.sharding.read.epoch_plan import EpochPlan, TrackOrder


def epoch_tracks(plan: EpochPlan, epoch: int, workers: int) -> dict[tuple[int, int], list[np.ndarray]]:
    """The tracks of every batch of one epoch, per (rank, worker)."""
    order = TrackOrder(plan)
    return {
        (rank, worker): [order.tracks(plan.positions(epoch, b, rank)) for b in plan.worker_batches(0, worker, workers)]
        for rank in range(plan.world_size)
        for worker in range(workers)
    }


def test_an_epoch_of_passes_holds_every_track_k_times_in_equal_disjoint_slices() -> None:
    plan = EpochPlan(num_tracks=60, pairs_per_track=3, batch_size=5, world_size=4, seed=7)
    assert plan.batches_per_epoch == 60 * 3 // 20
    slices = epoch_tracks(plan, epoch=1, workers=3)
    sizes = {key: sum(len(batch) for batch in batches) for key, batches in slices.items()}
    assert set(sizes.values()) == {3 * 5}  # 9 batches per rank over 3 workers: 3 batches each
    positions = [
        plan.positions(1, b, rank) for rank in range(4) for w in range(3) for b in plan.worker_batches(0, w, 3)
    ]
    flat = np.concatenate(positions)
    assert len(np.unique(flat)) == len(flat) == 180  # disjoint, and together the whole epoch
    counts = Counter(np.concatenate([np.concatenate(b) for b in slices.values()]).tolist())
    assert counts == dict.fromkeys(range(60), 3)


def test_no_track_repeats_inside_a_pass_and_passes_differ() -> None:
    plan = EpochPlan(num_tracks=1_000, pairs_per_track=8, batch_size=100, world_size=1, seed=0)
    order = TrackOrder(plan)
    for batch in range(10):  # the first pass: 1000 items in 10 batches
        assert len(np.unique(order.tracks(plan.positions(0, batch, 0)))) == 100
    assert not np.array_equal(plan.permutation(0), plan.permutation(1))
    assert np.array_equal(np.sort(plan.permutation(5)), np.arange(1_000))


def test_workers_take_alternate_batches_from_any_start() -> None:
    plan = EpochPlan(num_tracks=10, pairs_per_track=1, batch_size=2, world_size=1, seed=0, fixed_batches=7)
    assert [list(plan.worker_batches(3, w, 2)) for w in range(2)] == [[3, 5], [4, 6]]
    assert plan.epoch_start(2) == 2 * 7 * 2


def test_same_seed_same_order_other_seed_other_order() -> None:
    first = EpochPlan(50, 1, 10, 1, seed=3).permutation(0)
    assert np.array_equal(first, EpochPlan(50, 1, 10, 1, seed=3).permutation(0))
    assert not np.array_equal(first, EpochPlan(50, 1, 10, 1, seed=4).permutation(0))


def test_an_empty_selection_is_refused() -> None:
    with pytest.raises(ValueError, match="split of the set is empty"):
        EpochPlan(0, 1, 8, 1, 0)
