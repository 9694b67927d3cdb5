"""Tests for sharding.windows: windows in order and complete, short tracks padded, every track read once."""

from pathlib import Path

import numpy as np
import pytest

from musicssl.data_prep.pcm import pcm_to_float
from musicssl.sharding.shard_set import ShardSet
from musicssl.sharding.windows import iter_tracks, iter_windows
from tests.support.shard_factory import track_sample, write_shard, write_shard_set


def test_windows_cover_the_track_in_order_and_drop_the_short_tail() -> None:
    wave = np.arange(1_050, dtype=np.float32)
    windows = list(iter_windows(wave, 100))
    assert len(windows) == 10
    np.testing.assert_array_equal(np.concatenate(windows), wave[:1_000])
    assert all(np.shares_memory(w, wave) for w in windows)


def test_hop_gives_overlapping_windows_over_the_last_axis() -> None:
    wave = np.arange(2 * 10, dtype=np.float32).reshape(2, 10)
    windows = list(iter_windows(wave, 4, hop=2))
    assert [w[0, 0] for w in windows] == [0, 2, 4, 6]
    assert all(w.shape == (2, 4) for w in windows)


def test_track_shorter_than_a_window_gives_one_zero_padded_window() -> None:
    wave = np.ones(30, dtype=np.float32)
    (window,) = list(iter_windows(wave, 100))
    assert window.shape == (100,)
    assert window[:30].sum() == 30
    assert not window[30:].any()


@pytest.mark.parametrize(("window", "hop"), [(0, None), (10, 0), (-5, 5)])
def test_bad_window_sizes_are_refused(window: int, hop: int | None) -> None:
    with pytest.raises(ValueError, match="must be positive"):
        list(iter_windows(np.zeros(10), window, hop))


def test_every_track_is_read_once_in_index_order(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    tracks = [rng.integers(-32768, 32767, size=80 + i, dtype=np.int16) for i in range(7)]
    write_shard_set(tmp_path, tracks, sample_rate=100, tracks_per_shard=3)
    read = list(iter_tracks(ShardSet.open(tmp_path)))
    assert [meta.track_id for _, meta in read] == [f"track{i:06d}" for i in range(7)]
    for (wave, meta), pcm in zip(read, tracks, strict=True):
        assert wave.dtype == np.float32
        assert meta.num_samples == len(pcm)
        np.testing.assert_array_equal(wave, pcm_to_float(pcm))


def test_corrupt_member_stops_evaluation_naming_the_shard(tmp_path: Path) -> None:
    index = write_shard_set(tmp_path, [np.zeros(50, dtype=np.int16)], sample_rate=100)
    corrupt = track_sample("track000001", np.zeros(50, dtype=np.int16), 100)
    corrupt["pcm"] = corrupt["pcm"][:10]
    index.shards.append(write_shard(tmp_path / "shard-000001.tar", [corrupt], 100))
    index.save(tmp_path)
    with pytest.raises(ValueError, match=r"shard-000001\.tar"):
        list(iter_tracks(ShardSet.open(tmp_path)))


def test_shard_missing_tracks_against_the_index_is_reported(tmp_path: Path) -> None:
    index = write_shard_set(tmp_path, [np.zeros(50, dtype=np.int16)] * 2, sample_rate=100)
    index.shards[0].samples = 3
    index.save(tmp_path)
    with pytest.raises(ValueError, match="holds 2 tracks, the index says 3"):
        list(iter_tracks(ShardSet.open(tmp_path)))
