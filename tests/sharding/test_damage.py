"""Damaged set files (index.json, a shard, tracks.parquet): one-line errors naming the file and the fix, and
`python -m sharding index` / `repair` rebuilding what the tars still hold."""

import csv
from pathlib import Path

import pytest

from musicssl.data_prep.report import REPORT_NAME
from musicssl.sharding.__main__ import main
from musicssl.sharding.format import INDEX_NAME, TRACKS_NAME, ShardIndex
from musicssl.sharding.shard_set import ShardSet
from musicssl.sharding.tracks import StaleTrackTable, load_track_table
from musicssl.sharding.verify import verify_set
from tests.support.tagged_set import build_set, member_offset


def test_an_index_holding_a_list_is_one_line_naming_the_file_and_the_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    build_set(tmp_path)
    (tmp_path / INDEX_NAME).write_text("[1, 2]")
    for command in ("inspect", "verify"):
        assert main([command, str(tmp_path)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith(f"error: {tmp_path / INDEX_NAME}: ")
        assert f"python -m sharding repair {tmp_path}" in err
    with pytest.raises(ValueError, match="not a shard index"):
        main(["inspect", str(tmp_path), "--debug"])  # --debug shows the traceback


def test_inspect_of_a_truncated_shard_is_one_line_naming_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    index = build_set(tmp_path)
    shard = tmp_path / index.shards[1].name
    shard.write_bytes(shard.read_bytes()[:3000])
    assert main(["inspect", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.splitlines()[-1].startswith(f"error: {shard}: unreadable")
    assert f"python -m sharding repair {tmp_path}" in err


def test_a_corrupt_track_table_is_rebuilt_by_index_and_named_by_its_readers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    index = build_set(tmp_path)
    (tmp_path / TRACKS_NAME).write_bytes(b"PAR1 not a parquet file")
    with pytest.raises(StaleTrackTable, match=rf"{tmp_path / TRACKS_NAME}: .*python -m sharding index {tmp_path}"):
        load_track_table(tmp_path, index)
    assert main(["index", str(tmp_path)]) == 0
    assert len(load_track_table(tmp_path, index)) == 6 and verify_set(ShardSet.open(tmp_path))[1] == []


def test_repair_rebuilds_index_report_and_table_and_drops_a_damaged_track(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    index = build_set(tmp_path)
    shard = tmp_path / index.shards[1].name
    data = bytearray(shard.read_bytes())
    data[member_offset(shard, "t3.pcm") + 100] ^= 0x01
    shard.write_bytes(bytes(data))
    for name in (INDEX_NAME, TRACKS_NAME):
        (tmp_path / name).unlink()
    assert main(["repair", str(tmp_path)]) == 2  # which normalisation the lost index had cannot be read back
    assert "--normalise" in capsys.readouterr().err
    assert main(["repair", str(tmp_path), "--normalise", "peak"]) == 0
    out = capsys.readouterr().out
    assert f"lost {shard.name}: t3: audio bytes differ" in out and "5 tracks in 3 shards" in out
    assert (
        verify_set(ShardSet.open(tmp_path))[1] == []
        and len(load_track_table(tmp_path, ShardIndex.load_local(tmp_path))) == 5
    )
    with (tmp_path / REPORT_NAME).open() as f:
        assert sorted(row["track_id"] for row in csv.DictReader(f)) == ["t0", "t1", "t2", "t4", "t5"]
