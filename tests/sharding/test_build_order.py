"""Parallel preparation writes tracks in input order, so the same inputs give the same shard set every time."""

from __future__ import annotations

from pathlib import Path

from musicssl.data_prep.track import PrepSettings
from musicssl.sharding.build import prepare_shards
from musicssl.sharding.shard_set import ShardSet
from musicssl.sharding.windows import iter_tracks
from tests.support.audio_factory import write_chord


def test_two_workers_write_tracks_in_input_order(tmp_path: Path) -> None:
    music = tmp_path / "music"
    for number in range(6):  # the first file takes longest, so the other worker finishes several before it
        write_chord(music / f"song{number}.wav", seconds=240.0 if number == 0 else 9.0, base_hz=150.0 + 40 * number)
    orders = []
    for run in ("a", "b"):
        prepare_shards(music, tmp_path / run, PrepSettings(), workers=2, progress=False)
        orders.append([meta.track_id for _, meta in iter_tracks(ShardSet.open(tmp_path / run))])
    assert orders[0] == orders[1] == [f"song{number}" for number in range(6)]
