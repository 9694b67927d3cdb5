"""ShardSetWriter: size-based rotation, commit order, clean abort, resume after a kill, settings check."""

import tarfile
from pathlib import Path

import numpy as np
import pytest

from musicssl.sharding.format import ShardIndex, TrackMeta, read_meta
from musicssl.sharding.tracks import load_track_table
from musicssl.sharding.verify import iter_samples
from musicssl.sharding.writer import ShardSetWriter, sha256_file

RATE = 1000
TRACK_SAMPLES = 2000  # 4000 PCM bytes per track


def add_tracks(writer: ShardSetWriter[str], names: list[str]) -> None:
    for i, name in enumerate(names):
        pcm = np.full(TRACK_SAMPLES, i, dtype=np.int16)
        meta = TrackMeta(name, f"/in/{name}.wav", TRACK_SAMPLES / RATE, RATE, TRACK_SAMPLES)
        writer.add(name, pcm, meta, payload=name)


def keys_in(directory: Path, shard: str) -> list[str]:
    with tarfile.open(directory / shard) as tar:
        return [read_meta(s).track_id for s in iter_samples(tar)]


def test_shards_rotate_at_the_size_and_commit_in_order(tmp_path: Path) -> None:
    committed: list[tuple[str, list[str]]] = []
    writer: ShardSetWriter[str] = ShardSetWriter.open(
        tmp_path, RATE, "peak", 10_000, lambda name, payloads: committed.append((name, payloads))
    )
    with writer:
        add_tracks(writer, [f"t{i}" for i in range(7)])
    index = ShardIndex.load_local(tmp_path)
    assert committed == [
        ("shard-000000.tar", ["t0", "t1", "t2"]),  # rotation comes once a shard holds >= 10 kB
        ("shard-000001.tar", ["t3", "t4", "t5"]),
        ("shard-000002.tar", ["t6"]),
    ]
    assert [(s.name, s.samples, s.duration_s) for s in index.shards] == [
        ("shard-000000.tar", 3, 6.0),
        ("shard-000001.tar", 3, 6.0),
        ("shard-000002.tar", 1, 2.0),
    ]
    for info in index.shards:
        assert info.sha256 == sha256_file(tmp_path / info.name) and info.bytes == (tmp_path / info.name).stat().st_size
    assert keys_in(tmp_path, "shard-000001.tar") == ["t3", "t4", "t5"]
    names = ["index.json", *(s.name for s in index.shards), "tracks.parquet"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names)
    table = load_track_table(tmp_path, index, with_track_ids=True)
    assert list(table.track_ids) == [f"t{i}" for i in range(7)] and table.shard.tolist() == [0, 0, 0, 1, 1, 1, 2]


def test_an_error_discards_the_open_shard_and_a_resume_numbers_on(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), ShardSetWriter.open(tmp_path, RATE, "peak", 10_000) as writer:
        add_tracks(writer, ["a", "b", "c", "d"])
        raise RuntimeError("crash with track d in an open shard")
    assert [s.name for s in ShardIndex.load_local(tmp_path).shards] == ["shard-000000.tar"]
    assert not list(tmp_path.glob("*.partial"))

    (tmp_path / "shard-000001.tar.partial").write_bytes(b"left by a kill")
    (tmp_path / "shard-000001.tar").write_bytes(b"renamed, never indexed")
    with ShardSetWriter.open(tmp_path, RATE, "peak", 10_000) as writer:
        assert not (tmp_path / "shard-000001.tar").exists() and not list(tmp_path.glob("*.partial"))
        add_tracks(writer, ["d"])
    index = ShardIndex.load_local(tmp_path)
    assert [s.name for s in index.shards] == ["shard-000000.tar", "shard-000001.tar"]
    assert keys_in(tmp_path, "shard-000001.tar") == ["d"]


def test_a_set_with_other_settings_is_not_resumed(tmp_path: Path) -> None:
    ShardSetWriter.open(tmp_path, RATE, "peak").close()
    with pytest.raises(
        ValueError, match="has 1000 Hz, 'peak' normalisation, layout pcm_s16le; this run asks for 1000 Hz, 'rms'"
    ):
        ShardSetWriter.open(tmp_path, RATE, "rms")
    with pytest.raises(ValueError, match="must be positive"):
        ShardSetWriter.open(tmp_path, RATE, "peak", shard_size=0)
