"""Tests for `python -m downstream.embed`: a shard set embedded into a partitioned parquet dataset, per track or per
window, by one or two processes, and resumed after a kill -9 without a missing or duplicated track."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from musicssl.data_prep.entry import UserError
from musicssl.downstream.embed import STALL_VARIABLE, chunk_rows, launch_from_env, main
from musicssl.downstream.extract_task import embed_windows, track_windows
from musicssl.sharding.shard_set import ShardSet
from musicssl.sharding.windows import iter_tracks
from tests.support.labelled_shard_factory import tiny_backbone
from tests.support.launching import free_port
from tests.support.paths import REPO
from tests.support.shard_factory import write_shard_set

NUM_TRACKS = 9
RATE = 16000


@pytest.fixture(scope="module")
def shard_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = np.random.default_rng(3)
    lengths = rng.integers(RATE // 2, 3 * RATE, size=NUM_TRACKS)  # some shorter than a 1 s window
    tracks = [(rng.standard_normal(n) * 3000).astype(np.int16) for n in lengths]
    folder = tmp_path_factory.mktemp("shards")
    write_shard_set(folder, tracks, RATE, tracks_per_shard=4)
    return folder


def reference(shards: Path) -> dict[str, np.ndarray]:
    """Window embeddings of every track, from the shards decoded the evaluation way (sharding.windows)."""
    backbone, _ = tiny_backbone()
    return {
        meta.track_id: embed_windows(backbone, track_windows(wave, backbone.num_samples), 8)
        for wave, meta in iter_tracks(ShardSet.open(shards))
    }


def read_dataset(out: Path) -> dict[str, np.ndarray]:
    table = ds.dataset(out, format="parquet").to_table()
    ids = table.column("track_id").to_pylist()
    assert len(ids) == len(set(ids)), "a track was written twice"
    return dict(zip(ids, np.array(table.column("embedding").to_pylist(), dtype=np.float32), strict=True))


def args(backbone: Path, shards: Path, out: Path, *extra: str) -> list[str]:
    return ["--backbone", str(backbone), "--data", str(shards), "--out", str(out), "--device", "cpu", *extra]


def test_one_process_writes_one_pooled_row_per_track_joining_tracks_parquet(
    backbone_file: Path, shard_set: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "emb"
    assert main(args(backbone_file, shard_set, out, "--chunk-tracks", "4", "--no-progress")) == 0
    assert sorted(p.name for p in out.glob("part-*.parquet")) == [f"part-00000-0000{c}.parquet" for c in range(3)]
    rows = read_dataset(out)
    tracks = pq.read_table(shard_set / "tracks.parquet", columns=["track_id"]).column("track_id").to_pylist()
    assert sorted(rows) == sorted(tracks) and len(rows) == NUM_TRACKS
    expected = reference(shard_set)
    for track_id, windows in expected.items():
        np.testing.assert_allclose(rows[track_id], windows.mean(axis=0), atol=1e-4)
    assert "9 tracks in 3 parts" in capsys.readouterr().out
    assert main(args(backbone_file, shard_set, out, "--chunk-tracks", "4", "--no-progress")) == 0
    assert "0 tracks in 0 parts" in capsys.readouterr().out  # a rerun of a finished run has nothing left


def test_windows_and_max_pooling(backbone_file: Path, shard_set: Path, tmp_path: Path) -> None:
    out = tmp_path / "windows"
    assert main(args(backbone_file, shard_set, out, "--windows", "--no-progress")) == 0
    table = ds.dataset(out, format="parquet").to_table()
    assert table.column_names == ["track_id", "window", "embedding"]
    expected = reference(shard_set)
    assert table.num_rows == sum(len(windows) for windows in expected.values())
    for track_id, window, vector in zip(*(table.column(c).to_pylist() for c in table.column_names), strict=True):
        np.testing.assert_allclose(vector, expected[track_id][window], atol=1e-4)
    maxed = tmp_path / "max"
    assert main(args(backbone_file, shard_set, maxed, "--pooling", "max", "--no-progress")) == 0
    rows = read_dataset(maxed)
    for track_id, windows in expected.items():
        np.testing.assert_allclose(rows[track_id], windows.max(axis=0), atol=1e-4)


def test_a_rerun_with_other_settings_is_refused(backbone_file: Path, shard_set: Path, tmp_path: Path) -> None:
    out = tmp_path / "emb"
    assert main(args(backbone_file, shard_set, out, "--chunk-tracks", "4", "--no-progress")) == 0
    with pytest.raises(UserError, match="chunk_tracks"):
        main(args(backbone_file, shard_set, out, "--chunk-tracks", "5", "--no-progress"))


def test_ranks_take_chunks_in_turn_from_a_fixed_partition() -> None:
    assert chunk_rows(5, 2) == [range(0, 2), range(2, 4), range(4, 5)]
    assert launch_from_env({"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1"}).rank == 1
    assert launch_from_env({"SLURM_PROCID": "3", "SLURM_NTASKS": "4"}).world == 4
    assert launch_from_env({}).world == 1


def torchrun(backbone: Path, shards: Path, out: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    command = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc_per_node", "2",
               "--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{free_port()}",
               "-m", "musicssl.downstream.embed",
               *args(backbone, shards, out, "--chunk-tracks", "2", "--no-progress")]  # fmt: skip
    full_env = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.Popen(
        command, env=full_env, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )


def kill_every_process_naming(folder: Path) -> None:
    """SIGKILL the launcher and its ranks, every process whose command line names `folder`, and wait until they are
    gone: torchrun starts each rank in a session of its own, so killing the launcher's group leaves them running."""
    deadline = time.monotonic() + 60
    while pids := [
        int(entry.name)
        for entry in Path("/proc").iterdir()
        if entry.name.isdigit() and str(folder).encode() in read_command_line(entry)
    ]:
        assert time.monotonic() < deadline, f"processes {pids} outlived SIGKILL"
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.1)


def read_command_line(process: Path) -> list[bytes]:
    """A /proc entry's command-line arguments; none for a process that has gone (or a zombie's empty line)."""
    try:
        return (process / "cmdline").read_bytes().split(b"\0")
    except OSError:
        return []


@pytest.mark.distributed
def test_accelerate_launch_shares_the_chunks_out_the_same_way(
    backbone_file: Path, shard_set: Path, tmp_path: Path
) -> None:
    single, launched = tmp_path / "single", tmp_path / "accelerate"
    assert main(args(backbone_file, shard_set, single, "--chunk-tracks", "4", "--no-progress")) == 0
    env = {key: value for key, value in os.environ.items() if not key.startswith(("ACCELERATE_", "DS_"))}
    env |= {"OMP_NUM_THREADS": "1", "PATH": f"{Path(sys.executable).parent}:{env['PATH']}"}
    command = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", "configs/accelerate/one_node.yaml",
               "--num_processes", "2", "--main_process_port", str(free_port()), "-m", "musicssl.downstream.embed",
               *args(backbone_file, shard_set, launched, "--chunk-tracks", "4", "--no-progress")]  # fmt: skip
    done = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "rank 0/2: 5 tracks in 2 parts" in done.stdout and "rank 1/2: 4 tracks in 1 parts" in done.stdout
    rows, expected = read_dataset(launched), read_dataset(single)
    assert rows.keys() == expected.keys()
    for track_id, vector in expected.items():
        np.testing.assert_allclose(rows[track_id], vector, atol=1e-5)


@pytest.mark.distributed
def test_two_processes_equal_one_and_a_killed_run_resumes_without_gaps_or_duplicates(
    backbone_file: Path, shard_set: Path, tmp_path: Path
) -> None:
    single = tmp_path / "single"
    assert main(args(backbone_file, shard_set, single, "--chunk-tracks", "2", "--no-progress")) == 0
    expected = read_dataset(single)

    whole = tmp_path / "two"
    run = torchrun(backbone_file, shard_set, whole)
    output, _ = run.communicate(timeout=300)
    assert run.returncode == 0, output.decode()
    names = sorted(p.name for p in whole.glob("part-*.parquet"))
    assert names == ["part-00000-00000.parquet", "part-00000-00002.parquet", "part-00000-00004.parquet",
                     "part-00001-00001.parquet", "part-00001-00003.parquet"]  # fmt: skip
    rows = read_dataset(whole)
    assert rows.keys() == expected.keys()
    for track_id, vector in expected.items():
        np.testing.assert_allclose(rows[track_id], vector, atol=1e-5)

    (whole / "part-00001-00003.parquet").unlink()  # a part lost; finished by 1 process: chunk ids do not move
    assert main(args(backbone_file, shard_set, whole, "--chunk-tracks", "2", "--no-progress")) == 0
    assert (whole / "part-00000-00003.parquet").exists() and read_dataset(whole).keys() == expected.keys()

    killed = tmp_path / "killed"
    run = torchrun(backbone_file, shard_set, killed, {STALL_VARIABLE: "1"})  # each rank stops after one part
    deadline = time.monotonic() + 300
    while len(list(killed.glob("part-*.parquet"))) < 2:
        assert run.poll() is None and time.monotonic() < deadline, "the stalled run ended or never committed"
        time.sleep(0.2)
    kill_every_process_naming(killed)
    run.wait()
    first = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in killed.glob("part-*.parquet")}
    assert sorted(first) == ["part-00000-00000.parquet", "part-00001-00001.parquet"]
    rerun = torchrun(backbone_file, shard_set, killed)
    output, _ = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, output.decode()
    again = {name: ((killed / name).stat().st_ino, (killed / name).stat().st_mtime_ns) for name in first}
    assert again == first  # committed parts were neither redone nor replaced
    text = output.decode()
    assert "rank 0/2: 3 tracks in 2 parts" in text and "rank 1/2: 2 tracks in 1 parts" in text, text
    assert len(list(killed.glob("part-*.parquet"))) == 5
    rows = read_dataset(killed)
    assert rows.keys() == expected.keys()
    for track_id, vector in expected.items():
        np.testing.assert_allclose(rows[track_id], vector, atol=1e-5)
