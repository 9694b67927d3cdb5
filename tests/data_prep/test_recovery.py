"""A shard set survives lost or damaged state files, a second writer and kills at any point: what is committed
stays, nothing is stored twice, and the rerun ends with the set an uninterrupted run makes."""

import hashlib
import json
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from dataclasses import replace
from pathlib import Path

import pytest

from musicssl.data_prep.__main__ import main
from musicssl.data_prep.report import REPORT_NAME
from musicssl.sharding.build import prepare_shards
from musicssl.sharding.format import INDEX_NAME, TRACKS_NAME, ShardIndex
from musicssl.sharding.recover import repair_set
from musicssl.sharding.verify import iter_samples
from tests.support.audio_factory import write_chord
from tests.support.paths import FAULTY_DATA_PREP
from tests.support.prep_outcomes import SETTINGS, SMALL_SHARDS, assert_consistent, read_report, shard_tracks

FAULTY = FAULTY_DATA_PREP
GOOD = 6


@pytest.fixture(scope="module")
def small_corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """Six good tracks (about one a shard), a copy of the first and one too short: name -> expected reason."""
    folder = tmp_path_factory.mktemp("small") / "audio"
    expected = {}
    for i in range(GOOD):
        write_chord(folder / f"good{i}.wav", 9.0 + i * 0.25, base_hz=200.0 + 40 * i)
        expected[f"good{i}.wav"] = ""
    shutil.copy(folder / "good0.wav", folder / "good0_copy.wav")
    write_chord(folder / "short.wav", 3.0, base_hz=500.0)
    expected |= {"good0_copy.wav": "duplicate: same audio as ", "short.wav": "too short for a pair"}
    return folder, expected


def flags(out: Path) -> list[str]:
    return ["--out", str(out), "--workers", "1", "--no-progress", "--shard-size", str(SMALL_SHARDS)]


def run_faulty(point: str, hit: int, action: str, source: Path, out: Path, marker: Path) -> subprocess.Popen:
    command = [sys.executable, str(FAULTY), point, str(hit), action, str(marker), str(source), *flags(out)]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def wait_for_pause(process: subprocess.Popen, marker: Path) -> None:
    deadline = time.monotonic() + 120  # a bound on a hang, not a speed requirement
    while not marker.exists():
        assert process.poll() is None, f"data_prep ended before the pause point: {process.communicate()[1]}"
        assert time.monotonic() < deadline, "data_prep did not reach the pause point in 120 s"
        time.sleep(0.01)


def test_a_second_writer_is_refused_at_start_naming_the_holder(
    small_corpus: tuple[Path, dict[str, str]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source, expected = small_corpus
    out, marker = tmp_path / "out", tmp_path / "paused"
    holder = run_faulty("indexed", 2, "pause", source, out, marker)  # paused after committing its first shard
    try:
        wait_for_pause(holder, marker)
        committed = sorted(p.name for p in out.glob("shard-*"))
        assert main([str(source), *flags(out)]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"error: {out} is in use by pid {holder.pid} on ") and "python -m data_prep" in err
        assert sorted(p.name for p in out.glob("shard-*")) == committed  # the refused run touched nothing
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert main([str(source), *flags(out)]) == 0  # the dead holder's lock is taken over
    assert_consistent(out, expected)


def stored(out: Path) -> list[tuple[str, str]]:
    """(track id, source) of every stored track, sorted."""
    return sorted((meta.track_id, meta.source) for meta in shard_tracks(out))


def shard_files(out: Path) -> dict[str, int]:
    """Shard file name -> inode: a shard deleted and written again has a new one."""
    return {path.name: path.stat().st_ino for path in out.glob("shard-*.tar")}


@pytest.mark.parametrize("state", ["report missing", "report damaged", "index missing", "index damaged"])
def test_a_rerun_after_a_lost_state_file_keeps_every_track_once(
    small_corpus: tuple[Path, dict[str, str]], tmp_path: Path, state: str
) -> None:
    source, expected = small_corpus
    out = tmp_path / "out"
    prepare_shards(source, out, SETTINGS, SMALL_SHARDS, workers=1, progress=False)
    before, files = stored(out), shard_files(out)
    lost = out / ("report.csv" if state.startswith("report") else INDEX_NAME)
    if state.endswith("missing"):
        lost.unlink()
    else:
        lost.write_bytes(b"[1, 2]\xff\n")
    summary = prepare_shards(source, out, SETTINGS, SMALL_SHARDS, workers=1, progress=False)
    assert stored(out) == before and len(before) == GOOD  # nothing stored twice
    assert shard_files(out) == files  # no shard deleted or rewritten
    assert_consistent(out, expected)
    assert summary.statuses == {"ok": GOOD, "skipped": 2}
    assert summary.processed_now == (2 if state.startswith("report") else 0)  # only the skipped ones are redone


def test_new_inputs_after_a_lost_index_are_checked_against_the_stored_tracks(
    small_corpus: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    source, expected = small_corpus
    folder, out = tmp_path / "audio", tmp_path / "out"
    shutil.copytree(source, folder)
    prepare_shards(folder, out, SETTINGS, SMALL_SHARDS, workers=1, progress=False)
    files = shard_files(out)
    (out / INDEX_NAME).unlink()
    shutil.copy(folder / "good1.wav", folder / "new_copy.wav")
    write_chord(folder / "new.wav", 9.0, base_hz=777.0)
    summary = prepare_shards(folder, out, SETTINGS, SMALL_SHARDS, workers=1, progress=False)
    expected = expected | {"new_copy.wav": f"duplicate: same audio as {folder.resolve() / 'good1.wav'}", "new.wav": ""}
    assert_consistent(out, expected)
    assert summary.statuses == {"ok": GOOD + 1, "skipped": 3} and summary.processed_now == 2
    assert shard_files(out).items() >= files.items()


def contents(out: Path) -> dict[str, str]:
    """Track id -> sha1 of its stored audio bytes, over every indexed shard."""
    found: dict[str, str] = {}
    for info in ShardIndex.load_local(out).shards:
        with tarfile.open(out / info.name) as tar:
            for sample in iter_samples(tar):
                track_id = json.loads(sample["json"])["track_id"]
                assert track_id not in found, f"{track_id} stored twice"
                found[track_id] = hashlib.sha1(sample["pcm"]).hexdigest()
    return found


def outcomes(out: Path) -> list[tuple[str, str, str]]:
    return sorted((row["path"], row["status"], row["reason"]) for row in read_report(out))


@pytest.fixture(scope="module")
def uninterrupted(small_corpus: tuple[Path, dict[str, str]], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("uninterrupted")
    prepare_shards(small_corpus[0], out, SETTINGS, SMALL_SHARDS, workers=1, progress=False)
    return out


# (point, hit, state file lost after the kill): every step of committing a shard, the first shard and a later one
KILLS = [
    ("track", 4, None),
    ("renamed", 1, None),
    ("renamed", 3, INDEX_NAME),
    ("report", 3, None),
    ("reported", 4, REPORT_NAME),
    ("index", 2, None),  # the shard renamed and reported, the index not yet saved
    ("index", 4, INDEX_NAME),
    ("indexed", 3, None),
    ("table", 1, TRACKS_NAME),
]


@pytest.mark.parametrize(("point", "hit", "lost"), KILLS)
def test_a_kill_at_any_point_then_a_rerun_gives_the_uninterrupted_set(
    small_corpus: tuple[Path, dict[str, str]],
    uninterrupted: Path,
    tmp_path: Path,
    point: str,
    hit: int,
    lost: str | None,
) -> None:
    source, expected = small_corpus
    out = tmp_path / "out"
    killed = run_faulty(point, hit, "kill", source, out, tmp_path / "unused")
    assert killed.wait() == -signal.SIGKILL, killed.communicate()[1]  # killed at the point, not finished
    if lost:
        (out / lost).unlink(missing_ok=True)
    assert main([str(source), *flags(out)]) == 0
    assert contents(out) == contents(uninterrupted)  # track for track, byte for byte
    assert outcomes(out) == outcomes(uninterrupted)
    assert_consistent(out, expected)


def test_a_lost_index_is_rebuilt_with_the_levelling_the_tracks_store(
    small_corpus: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    """Each track stores how it was levelled: a rerun with another --normalise after the index was lost is refused
    before anything is rewritten, and `sharding repair` needs no --normalise."""
    source, _ = small_corpus
    out = tmp_path / "out"
    prepare_shards(source, out, SETTINGS, SMALL_SHARDS, workers=1, progress=False)
    files = shard_files(out)
    (out / INDEX_NAME).unlink()
    other = replace(SETTINGS, normalisation="rms" if SETTINGS.normalisation != "rms" else "peak")
    with pytest.raises(ValueError, match=rf"levelled with --normalise {SETTINGS.normalisation}, this run has"):
        prepare_shards(source, out, other, SMALL_SHARDS, workers=1, progress=False)
    assert shard_files(out) == files
    assert repair_set(out).index.normalisation == SETTINGS.normalisation


def test_temporary_files_of_a_killed_write_are_removed_by_the_rerun(
    small_corpus: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    source, _ = small_corpus
    out = tmp_path / "out"
    prepare_shards(source, out, SETTINGS, SMALL_SHARDS, workers=1, progress=False)
    stale = out / ".index.json.k3x9_a.tmp"  # what a kill inside write_atomic leaves
    stale.write_bytes(b"{")
    prepare_shards(source, out, SETTINGS, SMALL_SHARDS, workers=1, progress=False)
    assert not stale.exists()
