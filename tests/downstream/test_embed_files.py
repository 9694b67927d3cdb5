"""Tests for `python -m downstream.embed_files`: .npy + track ids, .parquet, window averaging, bad files skipped."""

import os
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from musicssl.data_prep.decode import decode_file
from musicssl.data_prep.entry import UserError
from musicssl.downstream.embed_files import main
from musicssl.downstream.extract_task import embed_windows, track_windows
from tests.support.audio_factory import write_chord, write_garbage
from tests.support.labelled_shard_factory import tiny_backbone


@pytest.fixture(scope="module")
def audio_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("audio")
    write_chord(folder / "a.wav", 2.5, base_hz=220.0)
    write_chord(folder / "sub" / "b.flac", 0.6, base_hz=330.0)
    write_garbage(folder / "broken.mp3")
    return folder


def test_npy_rows_are_window_means_in_track_id_order_and_bad_files_are_reported(
    backbone_file: Path, audio_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "emb.npy"
    assert main(["--backbone", str(backbone_file), str(audio_folder), "--out", str(out), "--device", "cpu"]) == 0
    embeddings = np.load(out)
    track_ids = (tmp_path / "emb.track_ids.txt").read_text().splitlines()
    assert track_ids == ["a", "sub_b"]
    assert embeddings.shape == (2, 16) and embeddings.dtype == np.float32
    backbone, _ = tiny_backbone()
    wave = decode_file(audio_folder / "a.wav", backbone.sample_rate).wave
    windows = track_windows(wave, backbone.num_samples)
    assert len(windows) == 2
    np.testing.assert_allclose(embeddings[0], embed_windows(backbone, windows, 8).mean(axis=0), atol=1e-4)
    captured = capsys.readouterr()
    assert "skipped" in captured.err and "broken.mp3" in captured.err
    assert "embedded 2 tracks (16-d), skipped 1" in captured.out


def test_parquet_holds_track_ids_and_embedding_lists(backbone_file: Path, audio_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "emb.parquet"
    single = audio_folder / "a.wav"
    args = ["--backbone", str(backbone_file), str(single), "--out", str(out), "--device", "cpu"]
    assert main(args) == 0
    table = pq.read_table(out)
    assert table.column_names == ["track_id", "embedding"]
    assert table.column("track_id").to_pylist() == ["a"]
    assert np.asarray(table.column("embedding").to_pylist()).shape == (1, 16)


def test_nothing_decodable_writes_nothing_and_fails(backbone_file: Path, audio_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "emb.npy"
    args = ["--backbone", str(backbone_file), str(audio_folder / "broken.mp3"), "--out", str(out)]
    assert main([*args, "--device", "cpu"]) == 1
    assert not out.exists()


def test_unknown_output_format_is_refused(backbone_file: Path, audio_folder: Path, tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"\.npy or \.parquet"):
        main(["--backbone", str(backbone_file), str(audio_folder), "--out", str(tmp_path / "emb.csv")])


def test_named_pipes_are_skipped_with_the_reason_not_waited_on(
    backbone_file: Path, audio_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    write_chord(folder / "a.wav", 2.5, base_hz=220.0)
    os.mkfifo(folder / "pipe.wav")  # opening it for reading would wait for a writer forever
    os.mkfifo(tmp_path / "given.flac")
    out = tmp_path / "emb.npy"
    args = ["--backbone", str(backbone_file), str(folder), str(tmp_path / "given.flac"), "--out", str(out)]
    assert main([*args, "--device", "cpu"]) == 0
    assert (tmp_path / "emb.track_ids.txt").read_text().splitlines() == ["a"]
    err = capsys.readouterr().err
    assert f"skipped {folder / 'pipe.wav'}: not a regular file: named pipe" in err
    assert f"skipped {tmp_path / 'given.flac'}: not a regular file: named pipe" in err
    assert not list(tmp_path.glob(".*.tmp"))
