"""End-to-end data preparation: one report row per input with its reason, shards, resuming after a crash."""

import csv
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import musicssl.sharding.build
from musicssl.data_prep.__main__ import main
from musicssl.data_prep.inputs import InputTrack
from musicssl.data_prep.report import COLUMNS, REPORT_NAME
from musicssl.data_prep.track import PrepSettings, TrackResult, prepare_track
from musicssl.sharding.build import prepare_shards
from musicssl.sharding.format import INDEX_NAME, ShardIndex
from tests.support.audio_factory import FORMATS, cut_in_half, scramble_middle, write_chord, write_garbage, write_silence
from tests.support.prep_outcomes import SETTINGS, SMALL_SHARDS, assert_consistent, read_report, shard_tracks


def make_corpus(folder: Path) -> dict[str, str]:
    """Good files in every format plus one file per rejection reason; returns file name -> expected reason."""
    expected = {}
    for i, extension in enumerate(FORMATS):
        write_chord(folder / f"good{i}{extension}", 9.0 + i * 0.5, base_hz=200.0 + 30 * i)
        expected[f"good{i}{extension}"] = ""
    shutil.copy(folder / "good0.flac", folder / "good0_copy.flac")
    write_chord(folder / "short.wav", 3.0, base_hz=500.0)
    write_silence(folder / "quiet.flac", 9.0)
    write_garbage(folder / "junk.mp3")
    (folder / "zero.ogg").write_bytes(b"")
    cut_in_half(write_chord(folder / "cut.wav", 12.0, base_hz=610.0))
    scramble_middle(write_chord(folder / "damaged.mp3", 12.0, base_hz=650.0))
    if os.geteuid() == 0:  # root reads anything: a folder under an audio name cannot be read as a file
        (folder / "locked.flac").mkdir()
    else:
        write_chord(folder / "locked.flac", 9.0).chmod(0)
    expected |= {
        "good0_copy.flac": "duplicate: same audio as ",
        "short.wav": "too short for a pair: 3.00 s < 8 s",
        "quiet.flac": "silent: RMS ",
        "junk.mp3": "cannot decode: ",
        "zero.ogg": "empty: zero-length file",
        "cut.wav": "truncated: decoded 6.00 s of 12.00 s",
        "damaged.mp3": "cannot decode: decoder error at ",
        "locked.flac": "unreadable: ",
    }
    return expected


def write_manifest(folder: Path, names: list[str]) -> Path:
    """A manifest with relative paths, tags, splits and one extra column."""
    manifest = folder / "manifest.csv"
    with manifest.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "tags", "split", "artist"])
        for i, name in enumerate(names):
            writer.writerow([f"audio/{name}", "rock;fast" if i % 2 else "jazz", "train" if i % 3 else "test", "a"])
    return manifest


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    root = tmp_path_factory.mktemp("corpus")
    (root / "audio").mkdir()
    expected = make_corpus(root / "audio")
    return write_manifest(root, sorted(expected)), expected


def recording_prepare(calls: list[str], crash_after: int | None = None) -> Callable[..., TrackResult]:
    """prepare_track noting each file it is given; raises KeyboardInterrupt (like a kill) after N files."""

    def prepare(track: InputTrack, settings: PrepSettings) -> TrackResult:
        if len(calls) == crash_after:
            raise KeyboardInterrupt
        calls.append(track.path.name)
        return prepare_track(track, settings)

    return prepare


def test_every_input_gets_one_row_with_a_specific_reason(corpus: tuple[Path, dict[str, str]], tmp_path: Path):
    manifest, expected = corpus
    summary = prepare_shards(manifest, tmp_path, SETTINGS, SMALL_SHARDS, workers=1, progress=False)
    rows = assert_consistent(tmp_path, expected)
    assert list(rows[0]) == list(COLUMNS) and list(COLUMNS[:4]) == ["path", "status", "reason", "duration_s"]
    statuses = {Path(r["path"]).name: r["status"] for r in rows}
    assert statuses["short.wav"] == statuses["quiet.flac"] == statuses["good0_copy.flac"] == "skipped"
    assert statuses["junk.mp3"] == statuses["cut.wav"] == statuses["locked.flac"] == "failed"
    assert summary.statuses == {"ok": len(FORMATS), "skipped": 3, "failed": 5}
    assert sum(summary.statuses.values()) == summary.inputs == len(expected)
    assert summary.reasons[("skipped", "duplicate")] == 1 and summary.reasons[("failed", "cannot decode")] == 2


def test_manifest_metadata_reaches_the_shards(corpus: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    manifest, _ = corpus
    prepare_shards(manifest, tmp_path, SETTINGS, SMALL_SHARDS, workers=1, progress=False)
    with manifest.open() as f:
        listed = {Path(r["path"]).name: r for r in csv.DictReader(f)}
    metas = shard_tracks(tmp_path)
    assert len(metas) == len(FORMATS)
    for meta in metas:
        row = listed[Path(meta.source).name]
        assert meta.tags == row["tags"].split(";") and meta.split == row["split"]
        assert meta.extra["artist"] == "a" and len(meta.extra["pcm_sha1"]) == 40
        assert meta.sample_rate == 16000 and "." not in meta.track_id
        assert abs(meta.num_samples / 16000 - meta.duration_s) < 1e-3


def test_rerun_after_a_crash_continues_without_redoing_or_losing_tracks(
    corpus: tuple[Path, dict[str, str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifest, expected = corpus
    monkeypatch.setattr(musicssl.sharding.build, "prepare_track", recording_prepare([], crash_after=7))
    with pytest.raises(KeyboardInterrupt):
        prepare_shards(manifest, tmp_path, SETTINGS, SMALL_SHARDS, workers=1, progress=False)
    assert not list(tmp_path.glob("*.partial"))  # the interrupted shard was discarded, not committed
    done_before = {Path(r["path"]).name for r in read_report(tmp_path)}
    assert 0 < len(done_before) < 7

    second_run: list[str] = []
    monkeypatch.setattr(musicssl.sharding.build, "prepare_track", recording_prepare(second_run))
    summary = prepare_shards(manifest, tmp_path, SETTINGS, SMALL_SHARDS, workers=1, progress=False)
    assert_consistent(tmp_path, expected)
    assert not done_before & set(second_run)  # rows already final were not redone
    assert summary.processed_now == len(expected) - len(done_before)


def test_shard_renamed_but_not_indexed_is_redone(corpus: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    manifest, expected = corpus
    prepare_shards(manifest, tmp_path, SETTINGS, SMALL_SHARDS, workers=1, progress=False)
    index = ShardIndex.load_local(tmp_path)
    dropped = index.shards.pop()  # a kill between the rename and the index update looks like this
    index.save(tmp_path)
    (tmp_path / "shard-000099.tar.partial").write_bytes(b"half a tar")
    with (tmp_path / REPORT_NAME).open("a") as f:
        f.write("/some/path.mp3,fail")  # a report line cut by the kill

    summary = prepare_shards(manifest, tmp_path, SETTINGS, SMALL_SHARDS, workers=1, progress=False)
    rows = assert_consistent(tmp_path, expected)
    assert summary.processed_now == dropped.samples
    assert not any(r["path"] == "/some/path.mp3" for r in rows)
    assert not (tmp_path / "shard-000099.tar.partial").exists()


def test_parallel_workers_give_the_same_outcomes(corpus: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    manifest, expected = corpus
    summary = prepare_shards(manifest, tmp_path, SETTINGS, workers=2, progress=False)
    assert_consistent(tmp_path, expected)
    assert summary.statuses["ok"] == len(FORMATS) and len(ShardIndex.load_local(tmp_path).shards) == 1


def test_folder_input_finds_audio_recursively(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_chord(tmp_path / "in" / "a" / "one.mp3", 9.0, base_hz=300.0)
    write_chord(tmp_path / "in" / "b" / "two.flac", 9.0, base_hz=400.0)
    (tmp_path / "in" / "notes.txt").write_text("not audio")
    argv = [str(tmp_path / "in"), "--out", str(tmp_path / "out"), "--workers", "1", "--no-progress"]
    assert main(argv) == 0
    assert "2 inputs: ok 2, skipped 0, failed 0" in capsys.readouterr().out
    assert sorted(m.track_id for m in shard_tracks(tmp_path / "out")) == ["a_one", "b_two"]


def test_resuming_with_other_settings_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_chord(tmp_path / "in" / "one.wav", 9.0)
    argv = [str(tmp_path / "in"), "--out", str(tmp_path / "out"), "--workers", "1", "--no-progress"]
    assert main(argv) == 0
    assert main([*argv, "--sample-rate", "22050"]) == 2
    assert "16000 Hz, 'peak'" in capsys.readouterr().err
    assert ShardIndex.load_local(tmp_path / "out").sample_rate == 16000
    assert (tmp_path / "out" / INDEX_NAME).stat().st_mode & 0o044  # readable by others on a shared cluster


# Runs data_prep with the writer made to stop, flag its stop in a file and wait, at a fixed point: once a
# shard is committed and the next `.partial` holds a track. The test kills it there, on every machine alike.
PAUSING_DATA_PREP = """
import sys, time
from pathlib import Path
from musicssl.data_prep.__main__ import main
from musicssl.sharding.writer import ShardSetWriter
from musicssl.sharding.shard_set import ShardSet
add, marker = ShardSetWriter.add, Path(sys.argv[1])
def add_then_pause(self, *args, **kwargs):
    add(self, *args, **kwargs)
    if self.index.shards and list(self.directory.glob("*.partial")):
        marker.touch()
        time.sleep(600)
ShardSetWriter.add = add_then_pause
sys.exit(main(sys.argv[2:]))
"""


def test_rerun_after_sigkill_is_consistent(corpus: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    manifest, expected = corpus
    out, marker = tmp_path / "out", tmp_path / "paused"
    flags = ["--out", str(out), "--workers", "1", "--no-progress", "--shard-size", str(SMALL_SHARDS)]
    command = [sys.executable, "-c", PAUSING_DATA_PREP, str(marker), str(manifest), *flags]
    log = (tmp_path / "stderr.txt").open("w")
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log)
    try:
        deadline = time.monotonic() + 300  # a bound on a hang, not a speed requirement
        while not marker.exists():
            ended = process.poll() is not None
            assert not ended, f"data_prep ended before the pause point: {(tmp_path / 'stderr.txt').read_text()}"
            assert time.monotonic() < deadline, "data_prep did not reach the pause point in 300 s"
            time.sleep(0.01)
        assert ShardIndex.load_local(out).shards and list(out.glob("*.partial"))
    finally:
        process.send_signal(signal.SIGKILL)
        assert process.wait() == -signal.SIGKILL  # it was killed while running, not after finishing
        log.close()
    prepare_shards(manifest, out, SETTINGS, SMALL_SHARDS, workers=1, progress=False)
    assert_consistent(out, expected)
    prepare_shards(manifest, tmp_path, SETTINGS, SMALL_SHARDS, workers=1, progress=False)
    assert_consistent(tmp_path, expected)
