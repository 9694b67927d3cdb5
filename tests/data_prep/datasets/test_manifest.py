"""Manifest writing: rows, tag order, missing-audio reporting and rejection of inconsistent listings."""

from __future__ import annotations

import csv
import logging
from pathlib import Path

import numpy as np
import pytest

from musicssl.data_prep.datasets import DatasetListing, TrackRecord, write_manifest
from musicssl.data_prep.datasets.files import find_file, load_strings


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x00")
    return path


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def record(track_id: str, split: str, tags: tuple[str, ...], *candidates: Path, **extra: str) -> TrackRecord:
    return TrackRecord(track_id=track_id, split=split, tags=tags, candidates=candidates, extra=extra)


def test_manifest_lists_found_tracks_with_tags_in_vocabulary_order(tmp_path: Path) -> None:
    audio = touch(tmp_path / "audio" / "a.mp3")
    listing = DatasetListing(
        records=[record("a", "train", ("rock", "calm"), audio, artist="x")],
        vocabulary=("calm", "pop", "rock"),
    )
    summary = write_manifest(listing, tmp_path / "out")
    rows = read_csv(summary.manifest)
    assert rows == [
        {"path": str(audio.absolute()), "track_id": "a", "tags": "calm;rock", "split": "train", "artist": "x"}
    ]
    assert summary.vocabulary.read_text() == "calm\npop\nrock\n"
    assert summary.tracks_per_split == {"train": 1}
    assert summary.track_count == 1


def test_first_existing_candidate_wins(tmp_path: Path) -> None:
    second = touch(tmp_path / "b.low.mp3")
    listing = DatasetListing(records=[record("b", "valid", (), tmp_path / "b.mp3", second)], vocabulary=())
    rows = read_csv(write_manifest(listing, tmp_path / "out").manifest)
    assert [row["path"] for row in rows] == [str(second.absolute())]
    assert rows[0]["tags"] == ""


def test_missing_audio_is_reported_not_fatal(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    present = touch(tmp_path / "here.wav")
    absent = tmp_path / "gone.wav"
    listing = DatasetListing(
        records=[
            record("here", "train", ("x",), present),
            record("gone", "test", ("x",), absent, tmp_path / "g2"),
        ],
        vocabulary=("x",),
    )
    with caplog.at_level(logging.WARNING):
        summary = write_manifest(listing, tmp_path / "out")
    assert summary.missing_count == 1
    assert summary.tracks_per_split == {"train": 1}
    assert [row["track_id"] for row in read_csv(summary.manifest)] == ["here"]
    missing_rows = read_csv(summary.missing)
    assert [(row["track_id"], row["path"], row["split"]) for row in missing_rows] == [
        ("gone", str(absent.absolute()), "test")
    ]
    assert "1 of 2 tracks" in caplog.text and str(absent.absolute()) in caplog.text


def test_no_missing_audio_still_writes_an_empty_missing_list(tmp_path: Path) -> None:
    listing = DatasetListing(records=[record("a", "train", (), touch(tmp_path / "a.mp3"))], vocabulary=())
    summary = write_manifest(listing, tmp_path / "out")
    assert summary.missing_count == 0
    assert read_csv(summary.missing) == []
    assert summary.missing.read_text().startswith("path,track_id,tags,split")


@pytest.mark.parametrize(
    ("records", "vocabulary", "message"),
    [
        ([("a", ("x",)), ("a", ("x",))], ("x",), "appear more than once"),
        ([("a", ("y",))], ("x",), "not in the vocabulary"),
        ([("a", ())], ("x;y",), "separator"),
        ([("a", ())], ("x", "x"), "repeats tags"),
    ],
)
def test_inconsistent_listings_are_rejected(
    tmp_path: Path, records: list[tuple[str, tuple[str, ...]]], vocabulary: tuple[str, ...], message: str
) -> None:
    listing = DatasetListing(
        records=[record(track_id, "train", tags, tmp_path / "a.mp3") for track_id, tags in records],
        vocabulary=vocabulary,
    )
    with pytest.raises(ValueError, match=message):
        write_manifest(listing, tmp_path / "out")


def test_extra_column_clashing_with_manifest_column_is_rejected(tmp_path: Path) -> None:
    listing = DatasetListing(
        records=[TrackRecord("a", "train", (), (tmp_path / "a.mp3",), extra={"split": "x"})], vocabulary=()
    )
    with pytest.raises(ValueError, match="clash"):
        write_manifest(listing, tmp_path / "out")


def test_track_record_rejects_unknown_split(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="validation"):
        record("a", "validation", (), tmp_path / "a.mp3")


def test_find_file_names_every_place_tried_and_the_hint(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"looked at .*one.*two.*get it from X"):
        find_file("f.txt", [tmp_path / "one", tmp_path / "two"], "get it from X")


def test_load_strings_refuses_object_arrays(tmp_path: Path) -> None:
    path = tmp_path / "objects.npy"
    np.save(path, np.array([["1", "a.mp3"]], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match=r"objects\.npy.*astype\(str\)"):
        load_strings(path)


def test_load_strings_reads_str_and_bytes_arrays(tmp_path: Path) -> None:
    np.save(tmp_path / "u.npy", np.array(["a", "bc"]))
    np.save(tmp_path / "s.npy", np.array([b"a", b"bc"]))
    assert load_strings(tmp_path / "u.npy") == ["a", "bc"]
    assert load_strings(tmp_path / "s.npy") == ["a", "bc"]
