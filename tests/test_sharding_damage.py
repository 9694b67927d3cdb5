"""Damaged set files (index.json, a shard, tracks.parquet): one-line errors naming the file and the fix, and
`python -m sharding index` / `repair` rebuilding what the tars still hold."""

from pathlib import Path

import pytest
from test_sharding_verify import build_set

from sharding.__main__ import main
from sharding.format import INDEX_NAME


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
