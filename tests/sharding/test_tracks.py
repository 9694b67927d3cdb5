"""sharding.tracks: the track table holds every track's exact byte offsets, is rebuilt incrementally, is refused
when stale, and `verify` checks its offsets against the tars."""

import tarfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from musicssl.sharding import tracks
from musicssl.sharding.__main__ import main
from musicssl.sharding.format import TRACKS_NAME, ShardIndex
from musicssl.sharding.location import read_set_file
from musicssl.sharding.shard_set import ShardSet
from musicssl.sharding.tracks import StaleTrackTable, build_track_table, load_track_table
from musicssl.sharding.verify import verify_set
from tests.support.shard_factory import ramp_track, write_shard_set

RATE = 100
LENGTHS = [1_500, 3_000, 700, 2_000, 2_500]


@pytest.fixture
def ramp_set(tmp_path: Path) -> Path:
    write_shard_set(tmp_path, [ramp_track(t, n) for t, n in enumerate(LENGTHS)], RATE, tracks_per_shard=2)
    return tmp_path


def test_offsets_point_at_each_tracks_audio(ramp_set: Path) -> None:
    index = ShardIndex.load_local(ramp_set)
    table = load_track_table(ramp_set, index, with_track_ids=True)
    assert list(table.track_ids) == [f"track{t:06d}" for t in range(len(LENGTHS))]
    assert table.num_samples.tolist() == LENGTHS and table.shard.tolist() == [0, 0, 1, 1, 2]
    for track, (shard, offset, samples) in enumerate(
        zip(table.shard, table.payload_offset, table.num_samples, strict=True)
    ):
        with tarfile.open(ramp_set / index.shards[shard].name) as tar:
            member = tar.getmember(f"track{track:06d}.pcm")
        assert (offset, 2 * samples) == (member.offset_data, member.size)
        data = (ramp_set / index.shards[shard].name).read_bytes()[offset : offset + 2 * samples]
        assert np.array_equal(np.frombuffer(data, "<i2"), ramp_track(track, samples))


def test_only_shards_the_table_does_not_cover_are_scanned(ramp_set: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = (ramp_set / TRACKS_NAME).read_bytes()
    scanned: list[str] = []
    original = tracks.scan_shard
    monkeypatch.setattr(
        tracks,
        "scan_shard",
        lambda path, position, layout: scanned.append(Path(path).name) or original(path, position, layout),
    )
    build_track_table(ramp_set)
    assert scanned == [] and pq.read_table(ramp_set / TRACKS_NAME).equals(pq.read_table(pa.BufferReader(before)))
    write_shard_set(ramp_set / "more", [ramp_track(t, 900) for t in range(2)], RATE, tracks_per_shard=2)
    scanned.clear()  # writing that set indexed it
    index = ShardIndex.load_local(ramp_set)
    extra = ShardIndex.load_local(ramp_set / "more").shards[0]
    (ramp_set / "more" / extra.name).rename(ramp_set / "shard-000009.tar")
    index.shards.append(type(extra)(**{**extra.__dict__, "name": "shard-000009.tar"}))
    index.save(ramp_set)
    with pytest.raises(StaleTrackTable, match=f"python -m sharding index {ramp_set}"):
        load_track_table(ramp_set, index)
    build_track_table(ramp_set)
    assert scanned == ["shard-000009.tar"]
    assert load_track_table(ramp_set, index).shard.tolist() == [0, 0, 1, 1, 2, 3, 3]


def test_a_rewritten_shard_makes_the_table_stale_until_indexed_again(ramp_set: Path) -> None:
    index = ShardIndex.load_local(ramp_set)
    index.shards[1].sha256 = "0" * 64  # what rebuilding the shard with other content does to the index
    index.save(ramp_set)
    with pytest.raises(StaleTrackTable, match=r"does not match index\.json"):
        load_track_table(ramp_set, index)
    assert main(["index", str(ramp_set)]) == 0
    assert len(load_track_table(ramp_set, index)) == len(LENGTHS)


def test_verify_checks_the_tables_offsets(ramp_set: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert verify_set(ShardSet.open(ramp_set))[1] == []
    table = pq.read_table(ramp_set / TRACKS_NAME)
    offsets = table.column("payload_offset").to_numpy().copy()
    offsets[3] += 512
    pq.write_table(table.set_column(1, "payload_offset", pa.array(offsets)), ramp_set / TRACKS_NAME)
    assert main(["verify", str(ramp_set)]) == 1
    err = capsys.readouterr().err
    assert "shard-000001.tar: tracks.parquet gives other audio offsets than the tar holds (from track 1 on)" in err
    assert f"python -m sharding index {ramp_set}" in err


def test_a_set_without_a_table_verifies_and_streams(ramp_set: Path) -> None:
    (ramp_set / TRACKS_NAME).unlink()
    assert verify_set(ShardSet.open(ramp_set))[1] == []


def test_a_shard_set_reads_its_track_table_once_and_a_missing_one_fails_alike_every_time(
    ramp_set: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads = []
    monkeypatch.setattr(tracks, "read_set_file", lambda *args: reads.append(args) or read_set_file(*args))
    shards = ShardSet.open(ramp_set)
    assert shards.track_table() is shards.track_table() and len(reads) == 1
    (ramp_set / TRACKS_NAME).unlink()
    bare = ShardSet.open(ramp_set)
    for _ in range(2):
        with pytest.raises(StaleTrackTable, match="python -m sharding index") as raised:
            bare.track_table()
        assert isinstance(raised.value.__cause__, FileNotFoundError)
    assert len(reads) == 2
