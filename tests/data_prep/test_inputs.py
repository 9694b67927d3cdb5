"""Manifests and inputs that used to go wrong quietly: a byte-order mark, Latin-1 text, an unbalanced quote,
a named pipe among the audio files."""

import csv
import os
from pathlib import Path

import pytest

from musicssl.data_prep.inputs import find_inputs
from musicssl.data_prep.report import REPORT_NAME
from musicssl.data_prep.track import PrepSettings
from musicssl.sharding.build import prepare_shards
from tests.support.audio_factory import write_chord


def test_a_utf8_manifest_with_a_byte_order_mark_is_read(tmp_path: Path) -> None:
    (tmp_path / "manifest.csv").write_bytes("path,tags\na.wav,rock\nb.wav,café\n".encode("utf-8-sig"))
    tracks = find_inputs(tmp_path / "manifest.csv")
    assert [t.path.name for t in tracks] == ["a.wav", "b.wav"] and tracks[1].tags == ["café"]


def test_a_latin1_manifest_is_refused_with_file_line_and_fix(tmp_path: Path) -> None:
    manifest = tmp_path / "manifest.csv"
    manifest.write_bytes("path,tags\na.wav,rock\nb.wav,café\n".encode("latin-1"))
    with pytest.raises(ValueError, match=rf"^{manifest}:3: not UTF-8 .*re-save it as UTF-8"):
        find_inputs(manifest)


def test_an_unbalanced_quote_is_refused_with_file_line_and_fix(tmp_path: Path) -> None:
    manifest = tmp_path / "manifest.csv"
    manifest.write_text('path,tags\na.wav,rock\nb.wav,"jazz\nc.wav,pop\nd.wav,folk\n')
    with pytest.raises(ValueError, match=rf"^{manifest}:3: .*unbalanced quote.*swallows lines 4-5"):
        find_inputs(manifest)


def test_a_named_pipe_is_skipped_with_a_reason_without_blocking(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    os.mkfifo(tmp_path / "in" / "pipe.wav")  # opening it for reading would wait for a writer forever
    write_chord(tmp_path / "in" / "good.wav", 9.0)
    summary = prepare_shards(tmp_path / "in", tmp_path / "out", PrepSettings(), workers=1, progress=False)
    assert summary.statuses == {"ok": 1, "skipped": 1}
    with (tmp_path / "out" / REPORT_NAME).open() as f:
        reasons = {Path(row["path"]).name: (row["status"], row["reason"]) for row in csv.DictReader(f)}
    assert reasons["pipe.wav"] == ("skipped", "not a regular file: named pipe")
    assert not list((tmp_path / "out").glob("*.partial"))


def test_a_sample_rate_that_is_no_rate_is_refused_naming_the_flag() -> None:
    with pytest.raises(ValueError, match=r"--sample-rate 0 is not a usable rate: give Hz, e.g. 16000"):
        PrepSettings(sample_rate=0)
