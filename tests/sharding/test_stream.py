"""End-to-end tests of the sequential stream (sharding.read.stream.StreamReader) on ramp tracks, whose values
reveal where crops lie."""

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from musicssl.sharding.format import SHARD_PATTERN
from musicssl.sharding.read.chooser import open_pairs
from musicssl.sharding.read.config import PairsConfig
from musicssl.sharding.read.stream import StreamReader
from musicssl.sharding.shard_set import ShardSet
from tests.support import ramps
from tests.support.ramps import RAMP_LENGTHS, RAMP_RATE
from tests.support.shard_factory import ramp_position, ramp_track, track_sample, write_shard, write_shard_set

RATE, LENGTHS = RAMP_RATE, RAMP_LENGTHS  # the ramp set's
ramp_set = ramps.ramp_set  # the fixture
SHORT = 600  # too short for a 400-sample crop plus a 400-sample gap
CONFIG = PairsConfig(pairs_per_track=4, track_shuffle=4, pair_shuffle=16, num_workers=0, reader="stream")
BATCH = 8


def stream(
    location: Path | str, config: PairsConfig = CONFIG, rank: int = 0, world_size: int = 1, **kwargs: int
) -> StreamReader:
    return StreamReader(ShardSet.open(location), config, BATCH, rank, world_size, **kwargs)


def batches(loader: object) -> list[torch.Tensor]:
    return list(loader)  # type: ignore[call-overload]


def test_batches_hold_valid_pairs_from_one_track(ramp_set: Path) -> None:
    loader = stream(ramp_set, CONFIG, rank=0, world_size=1)
    assert loader.batches_per_epoch == len(LENGTHS) * 4 // 8
    seen_tracks = set()
    for _ in range(3):
        for batch in loader:
            assert batch.dtype == torch.int16
            assert batch.shape == (8, 2, 400)
            for anchor, positive in batch.numpy():
                track, anchor_start = ramp_position(anchor)
                positive_track, positive_start = ramp_position(positive)
                assert positive_track == track
                assert 400 <= abs(positive_start - anchor_start) <= 1_600
                assert max(anchor_start, positive_start) + 400 <= LENGTHS[track]
                seen_tracks.add(track)
    assert len(seen_tracks) >= 8


def test_same_seed_gives_same_batches_with_and_without_workers(ramp_set: Path) -> None:
    for workers in (0, 2):
        config = replace(CONFIG, num_workers=workers)
        first = batches(stream(ramp_set, config, rank=0, world_size=1))
        second = batches(stream(ramp_set, config, rank=0, world_size=1))
        assert len(first) == len(second) == len(LENGTHS) * 4 // 8
        assert all(torch.equal(a, b) for a, b in zip(first, second, strict=True))
        reseeded = batches(stream(ramp_set, config, seed=1))
        assert not torch.equal(torch.stack(first), torch.stack(reseeded))


def test_each_epoch_draws_new_pairs_and_set_epoch_replays_one(ramp_set: Path) -> None:
    loader = stream(ramp_set, CONFIG, rank=0, world_size=1)
    epoch0, epoch1 = torch.stack(batches(loader)), torch.stack(batches(loader))
    assert loader.epoch == 2
    assert not torch.equal(epoch0, epoch1)
    loader.set_epoch(1)
    assert torch.equal(torch.stack(batches(loader)), epoch1)


def test_two_ranks_with_two_workers_draw_equal_counts_of_different_batches(ramp_set: Path) -> None:
    config = replace(CONFIG, num_workers=2)
    per_rank = [batches(stream(ramp_set, config, rank=rank, world_size=2)) for rank in (0, 1)]
    expected = len(LENGTHS) * 4 // (8 * 2)
    assert [len(b) for b in per_rank] == [expected, expected]
    assert not torch.equal(torch.stack(per_rank[0]), torch.stack(per_rank[1]))


def test_rank_and_world_size_default_to_the_launcher_environment(
    ramp_set: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "3")
    loader = open_pairs(ShardSet.open(ramp_set), CONFIG, BATCH)
    assert isinstance(loader, StreamReader)
    assert (loader.rank, loader.world_size) == (1, 3)
    assert loader.batches_per_epoch == max(1, len(LENGTHS) * 4 // (8 * 3))
    with pytest.raises(ValueError, match="rank 3 is outside"):
        stream(ramp_set, rank=3, world_size=3)


def test_corrupt_members_and_short_tracks_are_skipped_and_counted(tmp_path: Path) -> None:
    index = write_shard_set(tmp_path, [ramp_track(t, 3_000) for t in range(4)], RATE, tracks_per_shard=2)
    truncated = track_sample("track000004", ramp_track(4, 3_000), RATE)
    truncated["pcm"] = truncated["pcm"][:-2]  # metadata says 3000 samples, the member holds 2999
    short = track_sample("track000005", ramp_track(5, SHORT), RATE)
    index.shards.append(write_shard(tmp_path / (SHARD_PATTERN % 2), [truncated, short], RATE))
    index.save(tmp_path)
    config = replace(CONFIG, num_workers=2)
    loader = stream(tmp_path, config, rank=0, world_size=1)
    tracks = set()
    for _ in range(4):
        for batch in loader:
            tracks.update(ramp_position(crop)[0] for crop in batch.reshape(-1, 400).numpy())
    assert tracks <= {0, 1, 2, 3}
    stats = loader.stats
    assert stats.corrupt_skipped >= 1
    assert stats.short_skipped >= 1
    assert stats.pairs >= 4 * loader.batches_per_epoch * 8


def test_truncated_shard_is_skipped_not_fatal(tmp_path: Path) -> None:
    index = write_shard_set(tmp_path, [ramp_track(t, 3_000) for t in range(4)], RATE, tracks_per_shard=2)
    broken = tmp_path / index.shards[1].name
    broken.write_bytes(broken.read_bytes()[:700])  # cut inside the first member
    loader = stream(tmp_path, CONFIG, rank=0, world_size=1)
    tracks = {ramp_position(crop)[0] for batch in loader for crop in batch.reshape(-1, 400).numpy()}
    assert tracks <= {0, 1}
    stats = loader.stats
    assert stats.corrupt_skipped >= 1
    # every decoded track holds 3000 int16 samples plus a few hundred bytes of JSON metadata
    assert stats.tracks * 6_000 < stats.bytes < stats.tracks * 7_000


def test_a_set_that_can_give_no_pair_fails_loudly(tmp_path: Path) -> None:
    write_shard_set(tmp_path, [ramp_track(t, SHORT) for t in range(3)], RATE, tracks_per_shard=3)
    with pytest.raises(RuntimeError, match="gave no pair"):
        batches(stream(tmp_path, CONFIG, rank=0, world_size=1))


def test_pairs_stream_through_a_pipe_template(ramp_set: Path) -> None:
    loader = stream(f"pipe:cat {ramp_set}/{{}}", CONFIG, rank=0, world_size=1)
    local = stream(ramp_set, CONFIG, rank=0, world_size=1)
    assert torch.equal(torch.stack(batches(loader)), torch.stack(batches(local)))


def test_crop_samples_overrides_seconds(ramp_set: Path) -> None:
    batch = next(iter(stream(ramp_set, replace(CONFIG, crop_samples=590))))
    assert batch.shape == (8, 2, 590)
    assert np.all([ramp_position(crop)[1] + 590 <= 4_000 for crop in batch.reshape(-1, 590).numpy()])


def test_fixed_epoch_length_overrides_the_index(ramp_set: Path) -> None:
    loader = stream(ramp_set, rank=1, world_size=2, batches_per_epoch=3)
    assert len(loader) == 3
    assert len(batches(loader)) == 3
