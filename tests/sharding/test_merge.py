"""`python -m sharding merge`: array-job parts become one set every reader takes; bad parts are named."""

import csv
import shutil
from pathlib import Path

import pytest

from musicssl.data_prep.locks import exclusive_folder
from musicssl.data_prep.report import COLUMNS, REPORT_NAME
from musicssl.sharding.__main__ import main
from musicssl.sharding.format import INDEX_NAME, ShardIndex
from musicssl.sharding.location import load_index, shard_urls
from musicssl.sharding.read.config import PairsConfig
from musicssl.sharding.read.random_access import RandomAccessReader
from musicssl.sharding.read.stream import StreamReader
from musicssl.sharding.shard_set import ShardSet
from musicssl.sharding.windows import iter_tracks
from tests.support.shard_factory import ramp_track, write_shard_set

RATE = 100  # Hz: 4 s crops are 400 samples, a pair needs 800
PART_TRACKS = (3, 2, 4)  # tracks per part, two per shard


def make_part(root: Path, number: int, tracks: int, rate: int = RATE) -> Path:
    """One array task's output: shards, index.json, a report with an ok row per track and a failed one."""
    part = root / f"part-{number:03d}"
    # track t of every part is the same audio (ramp t), as when the array's inputs hold copies
    index = write_shard_set(part, [ramp_track(t, 1_000 + 300 * t) for t in range(tracks)], rate, 2)
    rows = [
        {
            "path": f"/in/p{number}/t{t}.wav",
            "status": "ok",
            "shard": index.shards[t // 2].name,
            "audio_sha1": f"h{t}",
        }
        for t in range(tracks)
    ]
    rows.append({"path": f"/in/p{number}/bad.mp3", "status": "failed", "reason": "cannot decode: junk"})
    with (part / REPORT_NAME).open("w", newline="") as f:
        writer = csv.DictWriter(f, COLUMNS, restval="", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return part


@pytest.fixture
def parts(tmp_path: Path) -> Path:
    for number, tracks in enumerate(PART_TRACKS):
        make_part(tmp_path, number, tracks)
    return tmp_path


def test_merged_set_is_read_by_every_reader(parts: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["merge", str(parts)]) == 0
    out = capsys.readouterr().out
    assert f"merged 3 parts: 5 shards, {sum(PART_TRACKS)} tracks" in out
    assert "warning: 5 track(s) repeat the audio of a track in another part" in out  # ramp t is the same audio
    index = load_index(parts)
    assert [s.name for s in index.shards][:3] == [
        "part-000/shard-000000.tar",
        "part-000/shard-000001.tar",
        "part-001/shard-000000.tar",
    ]
    assert all(Path(url).is_file() for url in shard_urls(parts, index))
    with (parts / REPORT_NAME).open() as f:
        rows = list(csv.DictReader(f))
    assert (parts / REPORT_NAME).read_text().count("path,status") == 1
    assert len(rows) == sum(PART_TRACKS) + len(PART_TRACKS)
    assert {r["shard"] for r in rows if r["status"] == "ok"} == {s.name for s in index.shards}

    assert main(["verify", str(parts)]) == 0
    assert main(["inspect", str(parts)]) == 0
    out = capsys.readouterr().out
    assert f"ok: 5 shards, {sum(PART_TRACKS)} tracks verified" in out and f"tracks: {sum(PART_TRACKS)}," in out
    assert (
        len(list(iter_tracks(ShardSet.open(parts))))
        == len(list(iter_tracks(ShardSet.open(f"pipe:cat {parts}/{{}}"))))
        == sum(PART_TRACKS)
    )
    config = PairsConfig(track_shuffle=2, pair_shuffle=8, num_workers=0)
    for loader in (
        RandomAccessReader(ShardSet.open(parts), config, 4, 0, 1),
        StreamReader(ShardSet.open(parts), config, 4, 0, 1),
    ):
        assert [tuple(b.shape) for b in loader] == [(4, 2, 400)] * len(loader)
        assert loader.stats.corrupt_skipped == 0 and loader.stats.tracks > 0

    before = (parts / INDEX_NAME).read_bytes()
    assert main(["merge", str(parts)]) == 0  # merging again (e.g. a requeued job) gives the same set
    assert (parts / INDEX_NAME).read_bytes() == before


def remove_index(part: Path) -> None:
    (part / INDEX_NAME).unlink()


def leave_partial(part: Path) -> None:
    (part / "shard-000002.tar.partial").write_bytes(b"half a tar")


def cut_report(part: Path) -> None:
    with (part / REPORT_NAME).open("a") as f:
        f.write("/in/p1/late.wav,o")


def report_unindexed_shard(part: Path) -> None:
    with (part / REPORT_NAME).open("a") as f:
        f.write("/in/p1/late.wav,ok,,,,shard-000009.tar,\n")


@pytest.mark.parametrize(
    ("damage", "says"),
    [
        (remove_index, "no index.json; its array task probably did not finish"),
        (leave_partial, "unfinished shard (shard-000002.tar.partial)"),
        (cut_report, "ends in a cut line"),
        (report_unindexed_shard, "names shard-000009.tar, which"),
        (shutil.rmtree, "part-001 missing: those array tasks never ran"),
    ],
)
def test_an_unfinished_part_is_refused_with_how_to_resume(
    parts: Path, damage: object, says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    damage(parts / "part-001")  # type: ignore[operator]
    assert main(["merge", str(parts)]) == 2
    err = capsys.readouterr().err
    assert says in err and "part-001" in err
    assert "--part 1 --parts N" in err and "resumes where it stopped" in err
    assert not (parts / INDEX_NAME).exists() and not (parts / REPORT_NAME).exists()


def test_a_part_with_other_settings_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for number in range(3):
        make_part(tmp_path, number, 2, rate=200 if number == 1 else RATE)
    assert main(["merge", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"most have {RATE} Hz" in err and "part-001 has 200 Hz" in err and "part-000 has" not in err
    assert not (tmp_path / INDEX_NAME).exists()


def test_a_set_of_its_own_is_not_overwritten(parts: Path, capsys: pytest.CaptureFixture[str]) -> None:
    own = write_shard_set(parts, [ramp_track(0, 1_000)], RATE)
    assert main(["merge", str(parts)]) == 2
    assert "lists shards outside part-NNN folders (shard-000000.tar" in capsys.readouterr().err
    assert ShardIndex.load_local(parts) == own


def test_merge_is_refused_while_another_writer_holds_the_folder(parts: Path, capsys: pytest.CaptureFixture[str]):
    with exclusive_folder(parts, "python -m data_prep (a test holder)"):
        assert main(["merge", str(parts)]) == 2
    assert "is in use by pid" in capsys.readouterr().err and not (parts / INDEX_NAME).exists()
