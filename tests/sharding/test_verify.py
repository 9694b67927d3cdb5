"""`python -m sharding verify|inspect`: damage is found and named by shard and member; statistics add up."""

from pathlib import Path

import pytest

from musicssl.sharding.__main__ import main
from musicssl.sharding.shard_set import ShardSet
from musicssl.sharding.verify import verify_set
from tests.support.tagged_set import build_set, member_offset


def test_a_sound_set_verifies(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    index = build_set(tmp_path)
    assert len(index.shards) == 3 and verify_set(ShardSet.open(tmp_path))[1] == []
    assert main(["verify", str(tmp_path)]) == 0
    assert "ok: 3 shards, 6 tracks verified" in capsys.readouterr().out


def test_a_flipped_audio_byte_names_shard_and_member(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    index = build_set(tmp_path)
    shard = tmp_path / index.shards[1].name
    data = bytearray(shard.read_bytes())
    data[member_offset(shard, "t3.pcm") + 100] ^= 0x01
    shard.write_bytes(bytes(data))
    assert main(["verify", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert f"BROKEN {shard.name}: t3.pcm: audio bytes differ" in err
    assert f"BROKEN {shard.name}: sha256 differs from the index" in err
    assert index.shards[0].name not in err


def test_wrong_counts_and_undecodable_members_are_named(tmp_path: Path) -> None:
    index = build_set(tmp_path)
    index.shards[0].samples += 1
    index.save(tmp_path)
    shard = tmp_path / index.shards[2].name
    data = bytearray(shard.read_bytes())
    start = member_offset(shard, "t5.json")
    data[start : start + 1] = b"["  # metadata no longer parses
    shard.write_bytes(bytes(data))
    problems = [str(p) for p in verify_set(ShardSet.open(tmp_path))[1]]
    assert f"{index.shards[0].name}: 3 tracks, index says 4" in problems
    assert any(p.startswith(f"{shard.name}: sample t5: missing or unreadable member") for p in problems)


def test_a_cut_or_missing_shard_is_reported(tmp_path: Path) -> None:
    index = build_set(tmp_path)
    first, second = (tmp_path / s.name for s in index.shards[:2])
    first.write_bytes(first.read_bytes()[:12000])  # inside the second track
    second.unlink()
    problems = [str(p) for p in verify_set(ShardSet.open(tmp_path))[1]]
    assert any(p.startswith(f"{first.name}: unreadable after 1 complete track(s) (last t0): ") for p in problems)
    assert any(p.startswith(f"{second.name}: unreadable after 0 complete track(s): ") for p in problems)


def test_inspect_prints_totals_durations_tags_and_splits(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    build_set(tmp_path)
    assert main(["inspect", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "shards: 3" in out and "1000 Hz, normalisation peak" in out
    assert "tracks: 6, 0.005 h" in out  # 2 + 2.5 + ... + 4.5 s = 19.5 s
    assert "duration (s): min 2.0, p10 2.2, median 3.2, p90 4.2, max 4.5, mean 3.2" in out
    assert "splits: test 2, train 4" in out and "tags: rock 6, fast 3" in out


def test_a_folder_without_index_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["verify", str(tmp_path)]) == 2
    assert "python -m data_prep" in capsys.readouterr().err
