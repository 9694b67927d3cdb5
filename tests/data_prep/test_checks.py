"""Levels, normalisation, content checks, input discovery and the report file."""

import csv
from pathlib import Path

import numpy as np
import pytest

from musicssl.data_prep.inputs import find_inputs, safe_key
from musicssl.data_prep.levels import content_problem, db_to_amplitude, normalise, rms_dbfs
from musicssl.data_prep.report import REPORT_NAME, Report, ReportRow

RATE = 1000


def sine(seconds: float, amplitude: float) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (amplitude * np.sin(2 * np.pi * 50 * t)).astype(np.float32)


def test_peak_normalisation_puts_the_peak_at_minus_one_dbfs() -> None:
    out = normalise(sine(10, 0.05), "peak")
    assert np.max(np.abs(out)) == pytest.approx(db_to_amplitude(-1.0), rel=1e-4)


def test_rms_normalisation_hits_minus_twenty_dbfs_unless_the_peak_would_clip() -> None:
    assert rms_dbfs(normalise(sine(10, 0.01), "rms")) == pytest.approx(-20.0, abs=0.01)
    spiky = np.zeros(10 * RATE, dtype=np.float32)
    spiky[::100] = 0.5  # RMS far below its peak: reaching -20 dBFS would clip
    out = normalise(spiky, "rms")
    assert np.max(np.abs(out)) == pytest.approx(db_to_amplitude(-1.0), rel=1e-4)
    assert rms_dbfs(out) < -20.0


def test_no_normalisation_keeps_the_level_and_unknown_modes_are_refused() -> None:
    wave = sine(10, 0.3)
    assert np.array_equal(normalise(wave, "none"), wave)
    with pytest.raises(ValueError, match="'loud' is unknown; use one of peak, rms, none"):
        normalise(wave, "loud")


def test_content_checks_name_short_and_silent_audio() -> None:
    assert content_problem(sine(7.5, 0.5), RATE, 8.0, -60.0) == "too short for a pair: 7.50 s < 8 s"
    assert content_problem(sine(9, 0.0005), RATE, 8.0, -60.0) == "silent: RMS -69.0 dBFS < -60 dBFS"
    assert content_problem(np.zeros(9 * RATE, dtype=np.float32), RATE, 8.0, -60.0).startswith("silent: RMS -inf")
    assert content_problem(sine(9, 0.5), RATE, 8.0, -60.0) is None


def test_folder_scan_is_recursive_sorted_and_gives_unique_dotless_keys(tmp_path: Path) -> None:
    for name in ["b/song.one.mp3", "a/x.FLAC", "a/x.wav", "a_x.ogg", "cover.jpg"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    tracks = find_inputs(tmp_path)
    assert [t.path.relative_to(tmp_path).as_posix() for t in tracks] == [
        "a/x.FLAC",
        "a/x.wav",
        "a_x.ogg",
        "b/song.one.mp3",
    ]
    assert [t.key for t in tracks] == ["a_x", "a_x_2", "a_x_3", "b_song_one"]
    assert [t.track_id for t in tracks] == [t.key for t in tracks]


def test_manifest_columns_become_track_metadata(tmp_path: Path) -> None:
    manifest = tmp_path / "lists" / "m.csv"
    manifest.parent.mkdir()
    manifest.write_text("path,track_id,tags,split,artist,year\n../a.mp3,id.1,rock; fast ;,train,Ann,\nb.wav,,,,,1999\n")
    first, second = find_inputs(manifest)
    assert first.path == (tmp_path / "a.mp3").resolve() and second.path == manifest.parent / "b.wav"
    assert (first.track_id, first.key, first.tags, first.split) == ("id.1", "id_1", ["rock", "fast"], "train")
    assert first.extra == {"artist": "Ann"} and second.extra == {"year": "1999"}
    assert (second.track_id, second.tags, second.split) == ("b", [], None)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("file,tags\na.mp3,x\n", "no 'path' column"),
        ("path\na.mp3\n./a.mp3\n", r"m\.csv:3: \./a\.mp3 already listed on line 2"),
        ("path,pcm_sha1\na.mp3,x\n", "reserved by data_prep"),
    ],
)
def test_bad_manifests_are_refused_with_the_line_and_fix(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "m.csv").write_text(text)
    with pytest.raises(ValueError, match=message):
        find_inputs(tmp_path / "m.csv")


def test_input_that_is_neither_folder_nor_manifest_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"not a folder nor a \.csv manifest"):
        find_inputs(tmp_path / "missing")
    assert safe_key("..") == "track"


def test_report_keeps_final_rows_and_drops_uncommitted_ok_rows_and_a_cut_line(tmp_path: Path) -> None:
    report = Report.open(tmp_path, committed_shards=set())
    report.append([ReportRow("/a.mp3", "ok", "", 9.5, "a", "shard-000000.tar", "s1")])
    report.append([ReportRow("/b.mp3", "failed", "cannot decode: x", None, "b")])
    report.append([ReportRow("/c.mp3", "ok", "", 9.0, "c", "shard-000001.tar", "s2")])
    with (tmp_path / REPORT_NAME).open("a") as f:
        f.write("/d.mp3,skipped,too sh")
    reopened = Report.open(tmp_path, committed_shards={"shard-000000.tar"})
    assert sorted(reopened.rows) == ["/a.mp3", "/b.mp3"]
    assert reopened.rows["/a.mp3"].duration_s == 9.5 and reopened.rows["/b.mp3"].category == "cannot decode"
    with (tmp_path / REPORT_NAME).open(newline="") as f:
        assert [r["path"] for r in csv.DictReader(f)] == ["/a.mp3", "/b.mp3"]  # rewritten on disk too
    assert reopened.status_counts(["/a.mp3", "/b.mp3", "/z.mp3"]) == {"ok": 1, "failed": 1, "pending": 1}
